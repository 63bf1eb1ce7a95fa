package bucket_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage/bucket"
)

var _ storage.File = (*bucket.Reader)(nil)

// s3Request is one request that reached the S3 server through countingProxy.
type s3Request struct {
	method, key, rng, ifMatch string
	status                    int
}

// countingProxy sits between the client and the S3 server and records every request (the
// Host header is kept, so the signatures stay valid).
type countingProxy struct {
	mu   sync.Mutex
	reqs []s3Request
}

func (p *countingProxy) take() []s3Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.reqs
	p.reqs = nil
	return r
}

// proxiedBucket is testBucket behind a countingProxy.
func proxiedBucket(t *testing.T) (*bucket.Bucket, *countingProxy) {
	t.Helper()
	_, cfg := testBucket(t, 0)
	target, err := url.Parse(cfg.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		req := resp.Request
		p.mu.Lock()
		p.reqs = append(p.reqs, s3Request{req.Method, req.URL.Path, req.Header.Get("Range"), req.Header.Get("If-Match"), resp.StatusCode})
		p.mu.Unlock()
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	cfg.Endpoint = srv.URL
	b, err := bucket.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b, p
}

// gets keeps the GETs of reqs.
func gets(reqs []s3Request) []s3Request {
	var out []s3Request
	for _, r := range reqs {
		if r.method == http.MethodGet {
			out = append(out, r)
		}
	}
	return out
}

func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	return data
}

// serve answers req with http.ServeContent over content, with the headers the delivery
// handler sets (Content-Type, so ServeContent does not sniff; a strong ETag).
func serve(req *http.Request, modTime time.Time, content io.ReadSeeker) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	w.Header().Set("Content-Type", "video/mp4")
	w.Header().Set("ETag", `"file-etag"`)
	http.ServeContent(w, req, "default.mp4", modTime, content)
	return w
}

// TestReaderServeContent: http.ServeContent over a Reader answers exactly as over the same
// bytes in a bytes.Reader (status, Content-Range, Content-Length, Content-Type, the body and
// every multipart part), for whole files, single, suffix, open-ended, out-of-range and
// multiple ranges, If-Range with the right and a wrong validator, If-None-Match and HEAD; and
// the S3 server receives one GET per range (one for ranges that follow each other; none for
// HEAD, 304 or 416),
// each from the range's start with If-Match on the object's ETag.
func TestReaderServeContent(t *testing.T) {
	b, proxy := proxiedBucket(t)
	ctx := context.Background()
	const size = 3<<20 + 12345
	data := randomBytes(1, size)
	etag, err := b.Upload(ctx, "files/v/default.1.mp4", bytes.NewReader(data), size)
	if err != nil {
		t.Fatal(err)
	}
	modTime := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	proxy.take()

	lastMod := modTime.Format(http.TimeFormat)
	for _, tc := range []struct {
		name    string
		method  string
		headers map[string]string
		gets    []string // the Range headers of the GETs the server must see
	}{
		{"whole", "GET", nil, []string{""}},
		{"head", "HEAD", nil, nil},
		{"first byte", "GET", map[string]string{"Range": "bytes=0-0"}, []string{""}},
		{"middle", "GET", map[string]string{"Range": "bytes=1000-1999"}, []string{"bytes=1000-"}},
		{"open-ended", "GET", map[string]string{"Range": "bytes=3000000-"}, []string{"bytes=3000000-"}},
		{"last byte", "GET", map[string]string{"Range": fmt.Sprintf("bytes=%d-", size-1)}, []string{fmt.Sprintf("bytes=%d-", size-1)}},
		{"past the end cut", "GET", map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", size-10, size+1000)}, []string{fmt.Sprintf("bytes=%d-", size-10)}},
		{"suffix", "GET", map[string]string{"Range": "bytes=-500"}, []string{fmt.Sprintf("bytes=%d-", size-500)}},
		{"suffix longer than file", "GET", map[string]string{"Range": fmt.Sprintf("bytes=-%d", size+5)}, []string{""}},
		{"unsatisfiable", "GET", map[string]string{"Range": fmt.Sprintf("bytes=%d-", size)}, nil},
		{"multi", "GET", map[string]string{"Range": "bytes=0-99,5000-5999,-100"},
			[]string{"", "bytes=5000-", fmt.Sprintf("bytes=%d-", size-100)}},
		// Adjacent parts: the second starts where the body stands, so the GET goes on.
		{"multi adjacent", "GET", map[string]string{"Range": "bytes=10-19,20-29"}, []string{"bytes=10-"}},
		{"if-range etag right", "GET", map[string]string{"Range": "bytes=100-199", "If-Range": `"file-etag"`}, []string{"bytes=100-"}},
		{"if-range etag wrong", "GET", map[string]string{"Range": "bytes=100-199", "If-Range": `"other"`}, []string{""}},
		{"if-range date right", "GET", map[string]string{"Range": "bytes=100-199", "If-Range": lastMod}, []string{"bytes=100-"}},
		{"if-range date wrong", "GET", map[string]string{"Range": "bytes=100-199", "If-Range": modTime.Add(-time.Hour).Format(http.TimeFormat)}, []string{""}},
		{"if-none-match", "GET", map[string]string{"If-None-Match": `"file-etag"`}, nil},
		{"head range", "HEAD", map[string]string{"Range": "bytes=100-199"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			newReq := func() *http.Request {
				req := httptest.NewRequest(tc.method, "/v/downloads/default.mp4", nil)
				for k, v := range tc.headers {
					req.Header.Set(k, v)
				}
				return req
			}
			want := serve(newReq(), modTime, bytes.NewReader(data))
			r := b.NewReader(ctx, "files/v/default.1.mp4", size, etag, modTime)
			got := serve(newReq(), modTime, r)
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			compareResponses(t, got, want)

			reqs := gets(proxy.take())
			if len(reqs) != len(tc.gets) || r.GETs() != len(tc.gets) {
				t.Fatalf("the server saw %d GETs (%+v), the Reader counts %d; want %d", len(reqs), reqs, r.GETs(), len(tc.gets))
			}
			for i, g := range reqs {
				if g.rng != tc.gets[i] || g.ifMatch != `"`+etag+`"` || !strings.HasSuffix(g.key, "/files/v/default.1.mp4") {
					t.Fatalf("GET %d: %+v, want Range %q and If-Match %q", i, g, tc.gets[i], `"`+etag+`"`)
				}
			}
		})
	}
}

// compareResponses fails unless got and want have the same status, headers that matter and
// body; multipart bodies are compared part by part (their boundaries are random).
func compareResponses(t *testing.T, got, want *httptest.ResponseRecorder) {
	t.Helper()
	if got.Code != want.Code {
		t.Fatalf("status %d, want %d (body %.200q)", got.Code, want.Code, got.Body.String())
	}
	for _, h := range []string{"Content-Range", "Content-Length", "Accept-Ranges", "ETag", "Last-Modified"} {
		if g, w := got.Header().Get(h), want.Header().Get(h); g != w {
			t.Fatalf("%s %q, want %q", h, g, w)
		}
	}
	gotType, gotParams, _ := mime.ParseMediaType(got.Header().Get("Content-Type"))
	wantType, wantParams, _ := mime.ParseMediaType(want.Header().Get("Content-Type"))
	if gotType != wantType {
		t.Fatalf("Content-Type %q, want %q", got.Header().Get("Content-Type"), want.Header().Get("Content-Type"))
	}
	if gotType != "multipart/byteranges" {
		if !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
			t.Fatalf("body differs: %d bytes, want %d", got.Body.Len(), want.Body.Len())
		}
		return
	}
	if got.Body.Len() != want.Body.Len() {
		t.Fatalf("multipart body of %d bytes, want %d", got.Body.Len(), want.Body.Len())
	}
	gr := multipart.NewReader(got.Body, gotParams["boundary"])
	wr := multipart.NewReader(want.Body, wantParams["boundary"])
	for i := 0; ; i++ {
		gp, gerr := gr.NextPart()
		wp, werr := wr.NextPart()
		if gerr == io.EOF && werr == io.EOF {
			return
		}
		if gerr != nil || werr != nil {
			t.Fatalf("part %d: %v, want %v", i, gerr, werr)
		}
		if g, w := gp.Header.Get("Content-Range"), wp.Header.Get("Content-Range"); g != w {
			t.Fatalf("part %d: Content-Range %q, want %q", i, g, w)
		}
		gb, gerr := io.ReadAll(gp)
		wb, werr := io.ReadAll(wp)
		if gerr != nil || werr != nil || !bytes.Equal(gb, wb) {
			t.Fatalf("part %d: %d bytes (%v), want %d (%v), or bytes differ", i, len(gb), gerr, len(wb), werr)
		}
	}
}

// TestReaderSequential: reads in small pieces, a Seek to where the body stands and Seeks
// that only ask for the position keep one GET; a Seek elsewhere and a Read there send one
// more; Close ends the body, after which Read and Seek fail; Stat gives name, size and time.
func TestReaderSequential(t *testing.T) {
	b, proxy := proxiedBucket(t)
	ctx := context.Background()
	data := randomBytes(2, 200000)
	etag, err := b.Upload(ctx, "files/seq.mp4", bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	proxy.take()
	mod := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := b.NewReader(ctx, "files/seq.mp4", int64(len(data)), `"`+etag+`"`, mod)
	fi, err := r.Stat()
	if err != nil || fi.Name() != "seq.mp4" || fi.Size() != int64(len(data)) || !fi.ModTime().Equal(mod) || fi.IsDir() {
		t.Fatalf("Stat: %v %v", fi, err)
	}
	if end, err := r.Seek(0, io.SeekEnd); err != nil || end != int64(len(data)) {
		t.Fatalf("Seek end: %d %v", end, err)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 777)
	for len(got) < 100000 {
		n, err := r.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
		if pos, err := r.Seek(0, io.SeekCurrent); err != nil || pos != int64(len(got)) {
			t.Fatalf("position %d %v, want %d", pos, err, len(got))
		}
		if _, err := r.Seek(int64(len(got)), io.SeekStart); err != nil { // where it stands
			t.Fatal(err)
		}
	}
	if n := len(gets(proxy.take())); n != 1 || r.GETs() != 1 {
		t.Fatalf("sequential reads sent %d GETs, want 1", n)
	}
	if _, err := r.Seek(-1000, io.SeekCurrent); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := data[len(got)-1000:]; !bytes.Equal(rest, want) {
		t.Fatalf("after a Seek back: %d bytes, want %d, or bytes differ", len(rest), len(want))
	}
	if !bytes.Equal(got, data[:len(got)]) {
		t.Fatal("sequential bytes differ")
	}
	reqs := gets(proxy.take())
	if len(reqs) != 1 || reqs[0].rng != fmt.Sprintf("bytes=%d-", len(got)-1000) {
		t.Fatalf("after the Seek: GETs %+v, want one from %d", reqs, len(got)-1000)
	}
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read at the end: %d %v, want EOF", n, err)
	}
	if _, err := r.Seek(int64(len(data))+10, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read past the end: %d %v, want EOF", n, err)
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("Seek to -1 accepted")
	}
	if len(gets(proxy.take())) != 0 {
		t.Fatal("a Read at or past the end sent a GET")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(buf); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	if _, err := r.Seek(0, io.SeekStart); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Seek after Close: %v", err)
	}
}

// TestReaderObjectChanged: an object replaced (same size, other bytes) or deleted between two
// ranges of one Reader makes the next range an ErrChanged error (and ErrNotExist when it is
// gone) — never bytes of the new version; so does a Reader made with a wrong size; and
// ServeContent over such a Reader sends a truncated body, not wrong bytes.
func TestReaderObjectChanged(t *testing.T) {
	b, proxy := proxiedBucket(t)
	ctx := context.Background()
	const size = 300000
	v1, v2 := randomBytes(3, size), randomBytes(4, size)
	etag1, err := b.Upload(ctx, "f.mp4", bytes.NewReader(v1), size)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("replaced", func(t *testing.T) {
		r := b.NewReader(ctx, "f.mp4", size, etag1, time.Now())
		defer r.Close()
		head := make([]byte, 1000)
		if _, err := io.ReadFull(r, head); err != nil || !bytes.Equal(head, v1[:1000]) {
			t.Fatalf("first range: %v", err)
		}
		etag2, err := b.Upload(ctx, "f.mp4", bytes.NewReader(v2), size)
		if err != nil || etag2 == etag1 {
			t.Fatalf("replace: %q %v", etag2, err)
		}
		proxy.take()
		if _, err := r.Seek(100000, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		n, err := r.Read(head)
		if n != 0 || !errors.Is(err, bucket.ErrChanged) {
			t.Fatalf("Read after the replace: %d bytes, %v; want ErrChanged", n, err)
		}
		t.Logf("the server answered the stale If-Match with %+v; error: %v", gets(proxy.take()), err)

		// A Reader made for the new version reads it; one made with a wrong size fails.
		r2 := b.NewReader(ctx, "f.mp4", size, etag2, time.Now())
		got, err := io.ReadAll(r2)
		if err != nil || !bytes.Equal(got, v2) {
			t.Fatalf("new version: %d bytes, %v", len(got), err)
		}
		r3 := b.NewReader(ctx, "f.mp4", size+1, etag2, time.Now())
		if _, err := r3.Read(head); !errors.Is(err, bucket.ErrChanged) {
			t.Fatalf("wrong size: %v, want ErrChanged", err)
		}
		r4 := b.NewReader(ctx, "f.mp4", size, "", time.Now()) // no ETag: the size is still checked
		if _, err := r4.Read(head); err != nil {
			t.Fatalf("no ETag: %v", err)
		}
		for _, r := range []*bucket.Reader{r2, r3, r4} {
			r.Close()
		}
		etag1 = etag2
		v1 = v2
	})

	t.Run("serve content", func(t *testing.T) {
		// Multi-range: the object is replaced after the first part; the body stops short.
		r := b.NewReader(ctx, "f.mp4", size, etag1, time.Now())
		defer r.Close()
		v3 := randomBytes(5, size)
		rs := &replaceAfter{Reader: r, n: 100, replace: func() {
			if _, err := b.Upload(ctx, "f.mp4", bytes.NewReader(v3), size); err != nil {
				t.Error(err)
			}
		}}
		req := httptest.NewRequest("GET", "/f.mp4", nil)
		req.Header.Set("Range", "bytes=0-99,200000-200099")
		w := serve(req, time.Now(), rs)
		if bytes.Contains(w.Body.Bytes(), v3[200000:200100]) {
			t.Fatal("bytes of the new version were served")
		}
		if cl := w.Header().Get("Content-Length"); cl == fmt.Sprint(w.Body.Len()) {
			t.Fatalf("a full body of %s bytes was served across a replace", cl)
		}
	})

	t.Run("deleted", func(t *testing.T) {
		etag, err := b.Upload(ctx, "g.mp4", bytes.NewReader(v1), size)
		if err != nil {
			t.Fatal(err)
		}
		r := b.NewReader(ctx, "g.mp4", size, etag, time.Now())
		defer r.Close()
		buf := make([]byte, 10)
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatal(err)
		}
		if err := b.Delete(ctx, "g.mp4"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Seek(5000, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		_, err = r.Read(buf)
		if !errors.Is(err, bucket.ErrChanged) || !errors.Is(err, bucket.ErrNotExist) {
			t.Fatalf("Read after the delete: %v, want ErrChanged and ErrNotExist", err)
		}
	})
}

// replaceAfter calls replace once n bytes have been read through it.
type replaceAfter struct {
	*bucket.Reader
	n       int
	read    int
	replace func()
}

func (r *replaceAfter) Read(p []byte) (int, error) {
	n, err := r.Reader.Read(p)
	r.read += n
	if r.read >= r.n && r.replace != nil {
		r.replace()
		r.replace = nil
	}
	return n, err
}

// TestReaderMemoryBounded: serving a 16 MiB object whole through ServeContent allocates far
// less than the object (nothing is buffered beyond the HTTP body).
func TestReaderMemoryBounded(t *testing.T) {
	b, _ := testBucket(t, 0)
	ctx := context.Background()
	const size = 16 << 20
	etag, err := b.Upload(ctx, "big.mp4", bytes.NewReader(bytes.Repeat([]byte("0123456789abcdef"), size/16)), size)
	if err != nil {
		t.Fatal(err)
	}
	r := b.NewReader(ctx, "big.mp4", size, etag, time.Now())
	defer r.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	w := &discardWriter{header: http.Header{"Content-Type": {"video/mp4"}}}
	http.ServeContent(w, httptest.NewRequest("GET", "/big.mp4", nil), "big.mp4", time.Now(), r)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("serving %d MiB from the bucket allocated %.2f MiB", size>>20, float64(alloc)/(1<<20))
	if w.n != size {
		t.Fatalf("served %d bytes, want %d", w.n, size)
	}
	if alloc > 4<<20 {
		t.Fatalf("serving %d MiB allocated %d MiB: the object is buffered", size>>20, alloc>>20)
	}
}

type discardWriter struct {
	header http.Header
	n      int64
}

func (w *discardWriter) Header() http.Header { return w.header }
func (w *discardWriter) WriteHeader(int)     {}
func (w *discardWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}
