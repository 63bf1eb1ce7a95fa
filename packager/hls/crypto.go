package hls

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrDecrypt: an AES-128 segment or init section did not decrypt (its
// length is not a whole number of blocks, or the padding is wrong: usually
// a wrong key or IV). The wrapping error names the segment.
var ErrDecrypt = errors.New("decryption failed")

// maxKeySize bounds a key response; a real one is 16 bytes.
const maxKeySize = 4 << 10

// memo holds bytes fetched once and shared: a key, an init section. Its
// one-slot semaphore makes concurrent users wait for a single fetch while
// still honouring their contexts.
type memo struct {
	sem  chan struct{}
	data []byte
	err  error // a failed load (not one cut by its caller's context): final
}

func newMemo() *memo { return &memo{sem: make(chan struct{}, 1)} }

// get returns the memo's bytes, calling load for them the first time. A load that
// failed (after its retries) is not tried again by the callers that waited for it; one
// that failed because its caller's ctx ended is.
func (m *memo) get(ctx context.Context, load func() ([]byte, error)) ([]byte, error) {
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	defer func() { <-m.sem }()
	if m.data != nil || m.err != nil {
		return m.data, m.err
	}
	b, err := load()
	if err != nil {
		if ctx.Err() == nil {
			m.err = err
		}
		return nil, err
	}
	m.data = b
	return b, nil
}

// keyCache maps a key URI (resolved URL, or the data: URI itself) to its
// bytes, within one Resolve call: each key is fetched once per job.
type keyCache map[string]*memo

// newKey makes the Key of an EXT-X-KEY tag of the playlist at u. checkKey
// has already accepted t.
func newKey(u *url.URL, t *keyTag, sc *scope) (*Key, error) {
	loc := RedactURL(u)
	k := &Key{}
	if t.iv != "" {
		iv, err := parseIV(t.iv)
		if err != nil {
			return nil, fmt.Errorf("%w %s: EXT-X-KEY: %v", ErrMalformed, loc, err)
		}
		k.IV = &iv
	}
	uri := strings.TrimSpace(t.uri)
	if len(uri) > 5 && strings.EqualFold(uri[:5], "data:") {
		key, err := dataKey(uri)
		if err != nil {
			return nil, fmt.Errorf("%w: EXT-X-KEY: %v (playlist %s)", ErrUnsupported, err, loc)
		}
		if k.bytes = sc.keys[uri]; k.bytes == nil {
			k.bytes = newMemo()
			k.bytes.data = key
			sc.keys[uri] = k.bytes
		}
		return k, nil
	}
	ku, err := sc.resolve(u, uri, "EXT-X-KEY")
	if err != nil {
		return nil, err
	}
	k.URL, k.hosts = ku, sc.hosts
	if k.bytes = sc.keys[ku.String()]; k.bytes == nil {
		k.bytes = newMemo()
		sc.keys[ku.String()] = k.bytes
	}
	return k, nil
}

// parseIV reads an IV attribute: 0x followed by up to 32 hex digits,
// left-padded with zeros (some packagers write 64-bit IVs).
func parseIV(s string) ([16]byte, error) {
	var iv [16]byte
	h := strings.TrimSpace(s)
	if len(h) < 3 || h[0] != '0' || (h[1] != 'x' && h[1] != 'X') {
		return iv, fmt.Errorf("IV %q is not a hexadecimal number (0x…)", truncate(s, 40))
	}
	h = h[2:]
	if len(h) > 32 {
		return iv, fmt.Errorf("IV %q is longer than 128 bits", truncate(s, 40))
	}
	if len(h)%2 == 1 {
		h = "0" + h
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return iv, fmt.Errorf("IV %q is not a hexadecimal number (0x…)", truncate(s, 40))
	}
	copy(iv[16-len(b):], b)
	return iv, nil
}

// dataKey decodes a key given inline as data:[<type>];base64,<16 bytes>.
func dataKey(uri string) ([]byte, error) {
	meta, payload, ok := strings.Cut(uri[5:], ",")
	if !ok || !strings.HasSuffix(strings.ToLower(meta), ";base64") && strings.ToLower(meta) != "base64" {
		return nil, errors.New("a data: key URI must be base64-encoded")
	}
	payload, err := url.PathUnescape(payload)
	if err != nil {
		return nil, errors.New("invalid data: key URI")
	}
	payload = strings.TrimRight(strings.TrimSpace(payload), "=")
	key, err := base64.RawStdEncoding.DecodeString(payload)
	if err != nil {
		key, err = base64.RawURLEncoding.DecodeString(payload)
	}
	if err != nil {
		return nil, errors.New("invalid base64 in the data: key URI")
	}
	if len(key) != aes.BlockSize {
		return nil, fmt.Errorf("the data: key is %d bytes, an AES-128 key is 16", len(key))
	}
	return key, nil
}

// loadKey returns k's 16 bytes, fetching them from the origin the first
// time (with the Client's headers and retries).
func (c *Client) loadKey(ctx context.Context, k *Key) ([]byte, error) {
	load := func() ([]byte, error) {
		if k.URL == nil {
			return nil, errors.New("AES-128 key without URL")
		}
		var buf bytes.Buffer
		if _, err := c.get(ctx, k.URL, k.hosts, &buf, sizeLimit{n: maxKeySize, what: "an AES-128 key"}); err != nil {
			return nil, err
		}
		if buf.Len() != aes.BlockSize {
			return nil, &OriginError{URL: RedactURL(k.URL), Attempts: 1,
				Err: fmt.Errorf("the AES-128 key is %d bytes, it must be exactly 16", buf.Len())}
		}
		return bytes.Clone(buf.Bytes()), nil
	}
	if k.bytes == nil { // a Key not made by Resolve: no cache
		return load()
	}
	return k.bytes.get(ctx, load)
}

// decryptInPlace decrypts b (AES-128-CBC) in place and returns it without
// its PKCS#7 padding.
func decryptInPlace(b, key []byte, iv [16]byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 || len(b)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("the encrypted body is %d bytes, not a whole number of 16-byte AES blocks", len(b))
	}
	cipher.NewCBCDecrypter(block, iv[:]).CryptBlocks(b, b)
	pad := int(b[len(b)-1])
	if pad == 0 || pad > aes.BlockSize {
		return nil, errors.New("bad PKCS#7 padding after AES-128 decryption (wrong key or IV?)")
	}
	for _, p := range b[len(b)-pad:] {
		if int(p) != pad {
			return nil, errors.New("bad PKCS#7 padding after AES-128 decryption (wrong key or IV?)")
		}
	}
	return b[:len(b)-pad], nil
}

// describeResource names a segment or init section in messages.
func describeResource(u *url.URL, r *ByteRange) string {
	s := RedactURL(u)
	if r != nil {
		s += fmt.Sprintf(" (bytes %d-%d)", r.Offset, r.Offset+r.Length-1)
	}
	return s
}
