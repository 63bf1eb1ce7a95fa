package hls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// get fetches u into buf (which it resets), retrying transient faults. It
// returns the final URL after redirects, which pol must allow (nil: u's own
// host only). A cancelled ctx yields ctx's cause; any other failure is an
// *OriginError.
func (c *Client) get(ctx context.Context, u *url.URL, pol *hostPolicy, buf *bytes.Buffer, limit sizeLimit) (*url.URL, error) {
	return c.getRange(ctx, u, pol, nil, buf, limit)
}

// getRange is get for the sub-range rng of u (the whole resource when rng
// is nil), asked for with a Range header. A 206 answer must hold exactly
// the range; a 200 answer (a server that ignores Range) is sliced here,
// reading no further than the range's end.
func (c *Client) getRange(ctx context.Context, u *url.URL, pol *hostPolicy, rng *ByteRange, buf *bytes.Buffer, limit sizeLimit) (*url.URL, error) {
	if err := checkHost(pol, u, rng); err != nil {
		return nil, err
	}
	hc := pol.httpClient(c.httpClient(), u)
	var final *url.URL
	err := c.retry(ctx, u, rng, func() (bool, error) {
		buf.Reset()
		var err error
		final, err = c.getOnce(ctx, hc, u, rng, buf, limit)
		if err != nil {
			buf.Reset()
		}
		return false, err
	})
	if err != nil {
		return nil, err
	}
	return final, nil
}

// checkHost refuses u (a resource, its range rng) when pol does not allow
// its host. Resolve refuses such URLs already; this guards Segments, Maps
// and Keys edited by the caller.
func checkHost(pol *hostPolicy, u *url.URL, rng *ByteRange) error {
	if pol == nil || pol.allows(u) {
		return nil
	}
	return &OriginError{URL: describeResource(u, rng), Attempts: 0,
		Err: &forbiddenError{fmt.Sprintf("host not allowed: %s is neither on the origin's host (%s) nor in allowed_hosts", RedactURL(u), pol.originName())}}
}

// retry is the one retry loop of every origin request: it calls try until
// try succeeds and has no more to do, fails for good (not transient), or
// has failed 1+c.retries() times in a row, waiting retryDelay between tries.
// try returns more when it made progress and wants to be called again (a
// new request: the count of failures starts again). A failure is reported
// as an *OriginError about u (its range rng); ctx's cause when ctx ended.
func (c *Client) retry(ctx context.Context, u *url.URL, rng *ByteRange, try func() (more bool, err error)) error {
	retries := c.retries()
	for attempt := 0; ; attempt++ {
		more, err := try()
		if err == nil {
			if !more {
				return nil
			}
			attempt = -1
			continue
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if !transient(err) || attempt >= retries {
			oe := &OriginError{URL: describeResource(u, rng), Attempts: attempt + 1}
			var se *statusError
			if errors.As(err, &se) {
				oe.Status = se.code
			} else {
				oe.Err = describeTransport(err)
			}
			return oe
		}
		delay := c.retryDelay(attempt, err)
		c.logRetry(u, rng, attempt, delay, err)
		if err := c.sleep(ctx, delay); err != nil {
			return err
		}
	}
}

// retryDelay is the wait before retry number attempt+1: exponential backoff
// from backoffBase capped at backoffMax, with jitter in [d/2, d), raised to
// the server's Retry-After (capped at maxRetryAfter) when it sent one.
func (c *Client) retryDelay(attempt int, err error) time.Duration {
	d := backoffBase
	for i := 0; i < attempt && d < backoffMax; i++ {
		d *= 2
	}
	d = min(d, backoffMax)
	d = d/2 + rand.N(d/2+1)
	var se *statusError
	if errors.As(err, &se) && se.retryAfter != "" {
		if ra, ok := parseRetryAfter(se.retryAfter, c.now()); ok {
			d = max(d, min(ra, maxRetryAfter))
		}
	}
	return d
}

// parseRetryAfter reads delay-seconds or an HTTP date (the delay from now).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// call is one request of an attempt: its response, under a watchdog that
// cancels it when nothing arrives for the stall timeout.
type call struct {
	ctx      context.Context // the caller's
	actx     context.Context // the attempt's: ends with ctx, or when stalled
	cancel   context.CancelCauseFunc
	resp     *http.Response
	watchdog *time.Timer
	stall    time.Duration
	meter    Meter // counts the body's bytes; nil: none
	// validator identifies the representation of a 2xx answer (Validators); was is
	// the one recorded for the resource before ("" when none, or no Validators).
	validator, was string
}

// send is the one way every origin request goes out: a GET of u through hc
// with the client's headers and, when not empty, a Range header, under the
// stall watchdog (which bounds the wait for the headers and, through body,
// for each read). The caller must close the call. A non-2xx answer is
// returned as is, for the caller to judge (see statusErr).
func (c *Client) send(ctx context.Context, hc *http.Client, u *url.URL, rangeHeader string) (*call, error) {
	actx, cancel := context.WithCancelCause(ctx)
	req, err := c.newRequest(actx, u)
	if err != nil {
		cancel(nil)
		return nil, err
	}
	if rangeHeader != "" {
		req.Header.Set("Range", rangeHeader)
	}
	stall := c.stallTimeout()
	k := &call{ctx: ctx, actx: actx, cancel: cancel, stall: stall}
	k.watchdog = time.AfterFunc(stall, func() {
		if ctx.Err() == nil {
			c.logStall(u, stall)
		}
		cancel(&stallError{timeout: stall.String()})
	})
	resp, err := hc.Do(req)
	if err != nil {
		err = k.fail(err)
		k.close()
		c.countRequest(u, nil, err)
		return nil, err
	}
	k.resp = resp
	k.meter = c.Meter
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		k.was, k.validator = c.Validators.note(u, resp)
	}
	c.countRequest(u, k, nil)
	return k, nil
}

// body is the response's body, re-arming the watchdog as bytes arrive.
func (k *call) body() io.Reader {
	k.watchdog.Reset(k.stall)
	return &progressReader{r: k.resp.Body, watchdog: k.watchdog, stall: k.stall, meter: k.meter}
}

// fail is err, or the stall that caused it when the attempt ended by itself.
func (k *call) fail(err error) error {
	if cause := context.Cause(k.actx); k.ctx.Err() == nil && cause != nil {
		return cause
	}
	return err
}

// statusErr is nil for a 2xx answer, else a *statusError, its body drained
// a little so that the connection can be reused.
func (k *call) statusErr() error {
	if k.resp.StatusCode >= 200 && k.resp.StatusCode <= 299 {
		return nil
	}
	k.drain()
	return &statusError{code: k.resp.StatusCode, retryAfter: k.resp.Header.Get("Retry-After")}
}

func (k *call) drain() { _, _ = io.CopyN(io.Discard, k.resp.Body, 64<<10) }

func (k *call) close() {
	k.watchdog.Stop()
	if k.resp != nil {
		k.resp.Body.Close()
	}
	k.cancel(nil)
}

// getOnce is one attempt of getRange.
func (c *Client) getOnce(ctx context.Context, hc *http.Client, u *url.URL, rng *ByteRange, buf *bytes.Buffer, limit sizeLimit) (*url.URL, error) {
	if rng != nil && rng.Length > limit.n {
		return nil, limit.tooLarge(rng.Length)
	}
	hdr := ""
	if rng != nil {
		hdr = rng.String()
	}
	k, err := c.send(ctx, hc, u, hdr)
	if err != nil {
		return nil, err
	}
	defer k.close()
	if err := k.statusErr(); err != nil {
		return nil, err
	}
	if rng != nil {
		return k.readRange(rng, buf)
	}
	resp := k.resp
	if resp.ContentLength > limit.n {
		return nil, limit.tooLarge(resp.ContentLength)
	}
	if resp.ContentLength > 0 {
		growExact(buf, int(resp.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(k.body(), limit.n+1))
	if err != nil {
		return nil, k.fail(err)
	}
	if n > limit.n {
		return nil, limit.tooLarge(-1)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return nil, io.ErrUnexpectedEOF
	}
	return resp.Request.URL, nil
}

// growExact makes room in buf for n more bytes, plus bytes.MinRead for ReadFrom's
// last call (which finds EOF; without that room it would double a full buffer). When
// buf must grow, it gets exactly that room, not the twice its capacity of
// bytes.Buffer.Grow: segment buffers are large and held several at a time.
func growExact(buf *bytes.Buffer, n int) {
	need := n + bytes.MinRead
	if buf.Cap()-buf.Len() >= need {
		return
	}
	b := make([]byte, buf.Len(), buf.Len()+need)
	copy(b, buf.Bytes())
	*buf = *bytes.NewBuffer(b)
}

// readRange reads the 2xx answer to a Range request for rng into buf,
// checked by checkRange.
func (k *call) readRange(rng *ByteRange, buf *bytes.Buffer) (*url.URL, error) {
	a, err := checkRange(k.resp, rangeReq{first: rng.Offset, last: rng.Offset + rng.Length - 1, exact: true, need: rng})
	if err != nil {
		return nil, err
	}
	body := k.body()
	want := rng.Length
	if a.whole {
		// The server ignored Range: skip to the range and read it only.
		if skipped, err := io.CopyN(io.Discard, body, rng.Offset); err != nil {
			if err == io.EOF {
				return nil, a.cut(skipped)
			}
			return nil, k.fail(err)
		}
	} else {
		want++ // one more byte shows a body too long
	}
	growExact(buf, int(rng.Length))
	n, err := buf.ReadFrom(io.LimitReader(body, want))
	if err != nil {
		return nil, k.fail(err)
	}
	switch {
	case n < rng.Length:
		return nil, a.cut(rng.Offset + n)
	case n > rng.Length:
		return nil, a.excess()
	}
	return k.resp.Request.URL, nil
}

// progressReader re-arms the stall watchdog whenever bytes arrive.
type progressReader struct {
	r        io.Reader
	watchdog *time.Timer
	stall    time.Duration
	meter    Meter
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.watchdog.Reset(p.stall)
		if p.meter != nil {
			p.meter.OriginBytes(n)
		}
	}
	return n, err
}

// newRequest makes a GET of u with the client's extra headers; a "Host" entry sets the
// request's Host.
func (c *Client) newRequest(ctx context.Context, u *url.URL) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	for k, vs := range c.Header {
		if http.CanonicalHeaderKey(k) == "Host" {
			if len(vs) > 0 {
				req.Host = vs[0]
			}
			continue
		}
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	return req, nil
}
