package hls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestFetchRetries(t *testing.T) {
	t.Parallel()
	const seg = "/demo/144p/seg_001.ts"
	tests := []struct {
		name      string
		retries   int
		fault     func(w http.ResponseWriter, n int) bool
		wantErr   string // "" → success
		wantCount int
		minSleep  time.Duration // the longest recorded sleep must be ≥ this
		anySleeps bool          // net/http may itself retry a GET on a dropped kept-alive connection
	}{
		{name: "503 then success", fault: func(w http.ResponseWriter, n int) bool {
			if n == 1 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return true
			}
			return false
		}, wantCount: 2},
		{name: "429 with Retry-After honoured", fault: func(w http.ResponseWriter, n int) bool {
			if n <= 2 {
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(http.StatusTooManyRequests)
				return true
			}
			return false
		}, wantCount: 3, minSleep: 7 * time.Second},
		{name: "Retry-After capped", fault: func(w http.ResponseWriter, n int) bool {
			if n == 1 {
				w.Header().Set("Retry-After", "86400")
				w.WriteHeader(http.StatusServiceUnavailable)
				return true
			}
			return false
		}, wantCount: 2, minSleep: maxRetryAfter},
		{name: "truncated body then success", fault: func(w http.ResponseWriter, n int) bool {
			if n == 1 {
				w.Header().Set("Content-Length", "100000")
				w.Write(make([]byte, 10))
				return true
			}
			return false
		}, wantCount: 2},
		{name: "connection dropped then success", fault: func(w http.ResponseWriter, n int) bool {
			if n == 1 {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
				return true
			}
			return false
		}, wantCount: 2, anySleeps: true},
		{name: "always 500", fault: func(w http.ResponseWriter, n int) bool {
			w.WriteHeader(http.StatusInternalServerError)
			return true
		}, wantErr: "origin answered 500 Internal Server Error for %s" + seg + " (after 5 attempts)", wantCount: 5},
		{name: "always 500, 2 retries", retries: 2, fault: func(w http.ResponseWriter, n int) bool {
			w.WriteHeader(http.StatusInternalServerError)
			return true
		}, wantErr: "origin answered 500 Internal Server Error for %s" + seg + " (after 3 attempts)", wantCount: 3},
		{name: "always 500, no retries", retries: -1, fault: func(w http.ResponseWriter, n int) bool {
			w.WriteHeader(http.StatusBadGateway)
			return true
		}, wantErr: "origin answered 502 Bad Gateway for %s" + seg, wantCount: 1},
		{name: "404 not retried", fault: func(w http.ResponseWriter, n int) bool {
			w.WriteHeader(http.StatusNotFound)
			return true
		}, wantErr: "origin answered 404 Not Found for %s" + seg, wantCount: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t)
			o.fault(seg, tt.fault)
			// Credentials and a query in the URL must not reach the message.
			base := strings.Replace(o.URL, "http://", "http://user:pw@", 1)
			c := &Client{Retries: tt.retries}
			sleeps := record(c)
			src, err := c.Resolve(context.Background(), base+"/demo/144p/index.m3u8?sig=secret", SelectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for i := range src.Segments {
				src.Segments[i].URL.RawQuery = "sig=secret"
			}
			sleeps.take()
			var got []int
			err = c.Fetch(context.Background(), src.Segments, 3, func(i int, body io.Reader) error {
				b, _ := io.ReadAll(body)
				if !bytes.Equal(b, fixture(t, fmt.Sprintf("demo/144p/seg_%03d.ts", i))) {
					t.Errorf("segment %d: wrong bytes", i)
				}
				got = append(got, i)
				return nil
			})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(got) != "[0 1 2]" {
					t.Errorf("delivered %v", got)
				}
			} else {
				var oe *OriginError
				if !errors.As(err, &oe) {
					t.Fatalf("err = %v, want *OriginError", err)
				}
				if want := fmt.Sprintf(tt.wantErr, o.URL); err.Error() != want {
					t.Errorf("error %q\n      want %q", err, want)
				}
				if errors.Is(err, ErrNotFound) {
					t.Error("a segment 404 must not be ErrNotFound")
				}
			}
			if n := o.count(seg); n != tt.wantCount {
				t.Errorf("requested %d times, want %d", n, tt.wantCount)
			}
			s := sleeps.take()
			if len(s) != tt.wantCount-1 && !tt.anySleeps {
				t.Errorf("slept %d times (%v), want %d", len(s), s, tt.wantCount-1)
			}
			var longest time.Duration
			for _, d := range s {
				longest = max(longest, d)
				if d > maxRetryAfter {
					t.Errorf("slept %v, more than the cap", d)
				}
			}
			if longest < tt.minSleep {
				t.Errorf("longest sleep %v, want ≥ %v", longest, tt.minSleep)
			}
		})
	}
}

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	for attempt := range 10 {
		d := (&Client{}).retryDelay(attempt, errors.New("x"))
		hi := min(backoffBase<<attempt, backoffMax)
		if d < hi/2 || d > hi {
			t.Errorf("attempt %d: delay %v not in [%v, %v]", attempt, d, hi/2, hi)
		}
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if d, ok := parseRetryAfter(now.Add(10*time.Second).Format(http.TimeFormat), now); !ok || d != 10*time.Second {
		t.Errorf("Retry-After date: %v %v", d, ok)
	}
	if d, ok := parseRetryAfter(now.Add(-time.Minute).Format(http.TimeFormat), now); !ok || d != 0 {
		t.Errorf("Retry-After date past: %v %v", d, ok)
	}
	if d, ok := parseRetryAfter("7", now); !ok || d != 7*time.Second {
		t.Errorf("Retry-After seconds: %v %v", d, ok)
	}
	if _, ok := parseRetryAfter("soon", now); ok {
		t.Error("bad Retry-After accepted")
	}
}

// TestRetryAfterDate: a Retry-After date is read on the Client's clock.
func TestRetryAfterDate(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const seg = "/demo/144p/seg_000.ts"
	o.fault(seg, func(w http.ResponseWriter, n int) bool {
		if n == 1 {
			w.Header().Set("Retry-After", now.Add(20*time.Second).Format(http.TimeFormat))
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	c := &Client{}
	sleeps := record(c)
	c.tune.now = func() time.Time { return now }
	src, err := c.Resolve(context.Background(), o.URL+"/demo/144p/index.m3u8", SelectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Fetch(context.Background(), src.Segments[:1], 1, func(int, io.Reader) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if s := sleeps.take(); len(s) != 1 || s[0] != 20*time.Second {
		t.Errorf("slept %v, want [20s]", s)
	}
}

func TestFetchConnectionRefused(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	c := quick(&Client{Retries: 1})
	src, err := c.Resolve(context.Background(), o.URL+"/demo/144p/index.m3u8", SelectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
	err = c.Fetch(context.Background(), src.Segments, 2, func(int, io.Reader) error { return nil })
	var oe *OriginError
	if !errors.As(err, &oe) || oe.Status != 0 || oe.Attempts != 2 {
		t.Fatalf("err = %#v", err)
	}
	if !strings.HasPrefix(err.Error(), "origin request for "+o.URL+"/demo/144p/seg_00") || !strings.HasSuffix(err.Error(), "(after 2 attempts)") {
		t.Errorf("error %q", err)
	}
	t.Log(err)
}

func TestStallTimeout(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	const seg = "/demo/144p/seg_000.ts"
	o.fault(seg, func(w http.ResponseWriter, n int) bool {
		if n == 1 {
			w.Header().Set("Content-Length", "115996")
			w.Write(make([]byte, 1000))
			w.(http.Flusher).Flush()
			time.Sleep(2 * time.Second) // stalls mid-body
			return true
		}
		return false
	})
	c := quick(&Client{StallTimeout: 200 * time.Millisecond})
	src, err := c.Resolve(context.Background(), o.URL+"/demo/144p/index.m3u8", SelectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.Fetch(context.Background(), src.Segments, 1, func(int, io.Reader) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("took %v: the stall was not cut short", d)
	}
	if n := o.count(seg); n != 2 {
		t.Errorf("requested %d times, want 2", n)
	}

	// Always stalling ends in an error that says so.
	o.fault(seg, func(w http.ResponseWriter, n int) bool {
		time.Sleep(time.Second) // no headers
		return true
	})
	c.Retries = -1
	err = c.Fetch(context.Background(), src.Segments, 1, func(int, io.Reader) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "sent nothing for 200ms") {
		t.Errorf("err = %v", err)
	}
}

func TestTooLarge(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	c := quick(&Client{})
	u, _ := resolveURI(mustURL(o.URL), "/demo/144p/seg_000.ts")
	var buf bytes.Buffer
	_, err := c.get(context.Background(), u, nil, &buf, sizeLimit{n: 1000, name: "limits.segment_size"})
	var oe *OriginError
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &oe) || oe.Attempts != 1 {
		t.Fatalf("err = %v", err)
	}
	if !errors.Is(err, ErrLimit) {
		t.Errorf("%v does not match ErrLimit", err)
	}
	if want := "origin request for " + o.URL + "/demo/144p/seg_000.ts failed: response too large: 115996 bytes, more than limits.segment_size (1000 bytes)"; err.Error() != want {
		t.Errorf("error %q", err)
	}
	// Without Content-Length (chunked) the limit holds too.
	o.fault("/chunked.ts", func(w http.ResponseWriter, _ int) bool {
		for range 10 {
			w.Write(make([]byte, 500))
			w.(http.Flusher).Flush()
		}
		return true
	})
	u, _ = resolveURI(mustURL(o.URL), "/chunked.ts")
	_, err = c.get(context.Background(), u, nil, &buf, sizeLimit{n: 1000, name: "limits.segment_size"})
	if !errors.Is(err, ErrTooLarge) || !strings.HasSuffix(err.Error(), "response too large: more than limits.segment_size (1000 bytes)") {
		t.Errorf("err = %v", err)
	}
}
