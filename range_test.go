package streamdownloads_test

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// TestRangeBeyondInt64 sends, through a real Caddy, Range headers whose positions do not
// fit in an int64 (RFC 9110 §14.1.1 puts no bound on their digits): a last-byte-pos
// beyond the end is clamped to the end (§14.1.2), a suffix longer than the file is the
// whole file, a first-byte-pos past the end stays unsatisfiable (416), and ranges that
// fit are answered as before (single, suffix, multi-range). The unit is
// case-insensitive, and a Range of another unit is ignored (RFC 9110 §14.1, §14.2).
func TestRangeBeyondInt64(t *testing.T) {
	const huge = "99999999999999999999" // 10^20 - 1 > 2^63 - 1
	origin := testutil.NewOrigin(t, testutil.DemoOrigin(t))
	e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", "")
	if code, env := e.call("POST", "/a/stream/demo/downloads"); code != http.StatusOK {
		t.Fatalf("POST: %d %+v", code, env.Errors)
	}
	en := e.waitReady("demo", "default")
	if en.Status != "ready" {
		t.Fatalf("packaging ended %s: %s", en.Status, en.ErrorReasonText)
	}
	resp, err := http.Get(en.URL)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %d %v", resp.StatusCode, err)
	}
	n := int64(len(whole))

	cases := []struct {
		name, rng string
		status    int
		parts     []part // one: a single-part 206; more: multipart/byteranges
	}{
		{name: "last-byte-pos beyond int64", rng: "bytes=0-" + huge, status: 206, parts: []part{{0, n}}},
		{name: "from the middle to beyond int64", rng: "bytes=100-" + huge, status: 206, parts: []part{{100, n}}},
		{name: "with spaces", rng: "bytes= 100 - " + huge + " ", status: 206, parts: []part{{100, n}}},
		{name: "leading zeros that fit", rng: "bytes=0-000000000000000000000099", status: 206, parts: []part{{0, 100}}},
		{name: "suffix beyond int64", rng: "bytes=-" + huge, status: 206, parts: []part{{0, n}}},
		{name: "first-byte-pos beyond int64", rng: "bytes=" + huge + "-", status: 416},
		{name: "first and last beyond int64", rng: "bytes=" + huge + "-" + huge + "9", status: 416},
		{name: "first-byte-pos at the end", rng: fmt.Sprintf("bytes=%d-", n), status: 416},
		{name: "multi-range with one beyond int64", rng: "bytes=0-9,20-" + huge, status: 206, parts: []part{{0, 10}, {20, n}}},
		{name: "multi-range with one past the end", rng: "bytes=0-9," + huge + "-", status: 206, parts: []part{{0, 10}}},
		{name: "suffix", rng: "bytes=-100", status: 206, parts: []part{{n - 100, n}}},
		{name: "multi-range", rng: "bytes=0-9,20-29", status: 206, parts: []part{{0, 10}, {20, 30}}},
		{name: "unit in capitals", rng: "Bytes=0-" + huge, status: 206, parts: []part{{0, n}}},
		{name: "unknown unit ignored", rng: "items=0-9", status: 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", en.URL, nil)
			req.Header.Set("Range", c.rng)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != c.status {
				t.Fatalf("Range %q: status %d, want %d (%s)", c.rng, resp.StatusCode, c.status, firstLine(string(body)))
			}
			switch {
			case c.status == 416:
				if got, want := resp.Header.Get("Content-Range"), fmt.Sprintf("bytes */%d", n); got != want {
					t.Errorf("Content-Range %q, want %q", got, want)
				}
			case c.status == 200:
				if !bytes.Equal(body, whole) {
					t.Errorf("body is not the whole file (%d bytes)", len(body))
				}
			case len(c.parts) == 1:
				p := c.parts[0]
				if got, want := resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", p.from, p.to-1, n); got != want {
					t.Errorf("Content-Range %q, want %q", got, want)
				}
				if !bytes.Equal(body, whole[p.from:p.to]) {
					t.Errorf("body is not bytes %d-%d of the file (%d bytes)", p.from, p.to-1, len(body))
				}
			default:
				checkMultipart(t, resp.Header.Get("Content-Type"), body, whole, c.parts)
			}
		})
	}
}

// part is whole[from:to].
type part struct{ from, to int64 }

// checkMultipart checks a multipart/byteranges body holds parts of whole, in order.
func checkMultipart(t *testing.T, contentType string, body, whole []byte, parts []part) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/byteranges" {
		t.Fatalf("Content-Type %q, want multipart/byteranges", contentType)
	}
	r := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for i, p := range parts {
		mp, err := r.NextPart()
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if got, want := mp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", p.from, p.to-1, len(whole)); got != want {
			t.Errorf("part %d: Content-Range %q, want %q", i, got, want)
		}
		b, err := io.ReadAll(mp)
		if err != nil || !bytes.Equal(b, whole[p.from:p.to]) {
			t.Errorf("part %d is not bytes %d-%d of the file (%d bytes, %v)", i, p.from, p.to-1, len(b), err)
		}
	}
	if _, err := r.NextPart(); err != io.EOF {
		t.Errorf("more parts than %d (%v)", len(parts), err)
	}
	if strings.Count(string(body), "--"+params["boundary"]) != len(parts)+1 {
		t.Errorf("body has other than %d parts", len(parts))
	}
}
