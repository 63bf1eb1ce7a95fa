package hls

import (
	"errors"
	"net/url"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// Meter counts what a Client asks of the origin (the module's metrics). Its methods
// are called from the fetching goroutines and must be cheap and safe for concurrent
// use.
type Meter interface {
	// OriginRequest: an origin request ended its wait for the response headers, with
	// outcome "2xx", "3xx", "4xx", "5xx", "stalled" or "error" (no answer).
	OriginRequest(outcome string)
	// OriginBytes: n body bytes came from the origin.
	OriginBytes(n int)
	// Retry: a request that failed transiently is tried again.
	Retry()
}

// log is c.Log, or a no-op logger.
func (c *Client) log() *zap.Logger {
	if c.Log != nil {
		return c.Log
	}
	return zap.NewNop()
}

// statusClass is the outcome of an answer with status code.
func statusClass(code int) string {
	if code < 100 || code > 599 {
		return "error"
	}
	return strconv.Itoa(code/100) + "xx"
}

// countRequest tells c.Meter how a request ended and logs a redirect followed.
func (c *Client) countRequest(u *url.URL, k *call, err error) {
	if err != nil {
		if c.Meter != nil {
			outcome := "error"
			if _, stalled := describeTransport(err).(*stallError); stalled {
				outcome = "stalled"
			}
			c.Meter.OriginRequest(outcome)
		}
		return
	}
	if c.Meter != nil {
		c.Meter.OriginRequest(statusClass(k.resp.StatusCode))
	}
	if final := k.resp.Request.URL; final != nil && final.String() != u.String() {
		if ce := c.log().Check(zap.DebugLevel, "origin redirected"); ce != nil {
			ce.Write(zap.String("url", RedactURL(u)), zap.String("to", RedactURL(final)))
		}
	}
}

// logRetry logs, at Debug, the retry of a request that failed with err.
func (c *Client) logRetry(u *url.URL, rng *ByteRange, attempt int, delay time.Duration, err error) {
	if c.Meter != nil {
		c.Meter.Retry()
	}
	if ce := c.log().Check(zap.DebugLevel, "retrying origin request"); ce != nil {
		reason := ""
		var se *statusError
		if errors.As(err, &se) {
			reason = "status " + strconv.Itoa(se.code)
		} else {
			reason = describeTransport(err).Error()
		}
		ce.Write(zap.String("url", describeResource(u, rng)), zap.Int("attempt", attempt+1),
			zap.Duration("delay", delay), zap.String("reason", reason))
	}
}

// logStall logs, at Debug, a request the watchdog ended.
func (c *Client) logStall(u *url.URL, stall time.Duration) {
	if ce := c.log().Check(zap.DebugLevel, "origin request stalled"); ce != nil {
		ce.Write(zap.String("url", RedactURL(u)), zap.Duration("stall_timeout", stall))
	}
}
