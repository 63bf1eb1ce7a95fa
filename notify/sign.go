package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader is the header that carries a delivery's signature:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
const SignatureHeader = "Webhook-Signature"

// IDHeader repeats the event's id (the payload's "id"), the same on every retry.
const IDHeader = "Webhook-Id"

// Tolerance is how far a signature's timestamp may be from the receiver's clock before
// the delivery is refused as a replay (or a clock that is far off).
const Tolerance = 5 * time.Minute

// Sign returns the Webhook-Signature of body sent at t with secret.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// Errors of Verify.
var (
	ErrMalformed = errors.New("malformed Webhook-Signature header")
	ErrExpired   = errors.New("Webhook-Signature timestamp too far from now (a replay?)")
	ErrSignature = errors.New("Webhook-Signature does not match the body")
)

// Verify is what a receiver does with a delivery: it checks header (the
// Webhook-Signature) against body with secret, and refuses a timestamp more than
// Tolerance away from now. Several v1 values (a sender in the middle of a secret
// rotation) are accepted if one matches.
func Verify(secret []byte, header string, body []byte, now time.Time) error {
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrMalformed
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil {
				return ErrMalformed
			}
			sigs = append(sigs, b)
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrMalformed
	}
	if d := now.Sub(time.Unix(t, 0)); d > Tolerance || d < -Tolerance {
		return fmt.Errorf("%w: %s", ErrExpired, d.Round(time.Second))
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrSignature
}
