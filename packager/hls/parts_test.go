package hls

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// partTuning shrinks the parts to n bytes, held in blocks of n/4 (n when that is
// not a multiple of the AES block size).
func partTuning(n int) tuning {
	t := tuning{partSize: n, blockSize: n / 4, sleep: noSleep}
	if t.blockSize%16 != 0 {
		t.blockSize = n
	}
	return t
}

// partOrigin serves a directory under /x/, with or without Range support,
// and records every request.
type partOrigin struct {
	*httptest.Server
	dir     string
	noRange bool
	chunked bool // with noRange: no Content-Length
	delay   time.Duration
	fail    func(uri, rng string, n int) int // status to answer instead (0: serve); n counts (uri, rng)

	mu        sync.Mutex
	reqs      map[string][]string // request URI → Range headers ("" for none)
	seen      map[string]int
	served    atomic.Int64 // body bytes written
	inflight  atomic.Int64
	maxFlight atomic.Int64
}

type countWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n.Add(int64(n))
	return n, err
}

func newPartOrigin(t testing.TB, dir string) *partOrigin {
	o := &partOrigin{dir: dir, reqs: map[string][]string{}, seen: map[string]int{}}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cur := o.inflight.Add(1)
		defer o.inflight.Add(-1)
		for m := o.maxFlight.Load(); cur > m && !o.maxFlight.CompareAndSwap(m, cur); m = o.maxFlight.Load() {
		}
		rng := r.Header.Get("Range")
		o.mu.Lock()
		o.reqs[r.RequestURI] = append(o.reqs[r.RequestURI], rng)
		o.seen[r.RequestURI+" "+rng]++
		n := o.seen[r.RequestURI+" "+rng]
		fail, noRange, chunked, delay := o.fail, o.noRange, o.chunked, o.delay
		o.mu.Unlock()
		if delay > 0 {
			time.Sleep(delay)
		}
		if fail != nil {
			if code := fail(r.RequestURI, rng, n); code != 0 {
				w.WriteHeader(code)
				return
			}
		}
		name := filepath.Join(o.dir, filepath.FromSlash(strings.TrimPrefix(r.URL.Path, "/x/")))
		cw := countWriter{w, &o.served}
		if !noRange || strings.HasSuffix(name, ".m3u8") {
			http.ServeFile(cw, r, name)
			return
		}
		b, err := os.ReadFile(name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		if chunked {
			w.(http.Flusher).Flush()
		} else {
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		}
		cw.Write(b)
	}))
	t.Cleanup(o.Close)
	return o
}

// ranges returns the Range headers requested for uri.
func (o *partOrigin) ranges(uri string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.reqs[uri])
}

// checkCover checks that the Range headers rs ask for [from, from+size)
// exactly once each.
func checkCover(t *testing.T, what string, rs []string, from, size int64) {
	t.Helper()
	type iv struct{ a, b int64 }
	var ivs []iv
	for _, r := range rs {
		a, b, ok := strings.Cut(strings.TrimPrefix(r, "bytes="), "-")
		x, err1 := strconv.ParseInt(a, 10, 64)
		y, err2 := strconv.ParseInt(b, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			t.Errorf("%s: Range %q", what, r)
			return
		}
		ivs = append(ivs, iv{x, min(y, from+size-1)})
	}
	slices.SortFunc(ivs, func(p, q iv) int { return int(p.a - q.a) })
	at := from
	for _, v := range ivs {
		if v.a != at {
			t.Errorf("%s: ranges %v do not cover %d-%d once each", what, rs, from, from+size-1)
			return
		}
		at = v.b + 1
	}
	if at != from+size {
		t.Errorf("%s: ranges %v end at %d, want %d", what, rs, at, from+size)
	}
}

// bigFFmpeg makes a bigger stream than the shared fixtures (640x360 at a high
// bit rate, 2 segments), clear, single-file and AES-128, in a temporary directory.
func bigFFmpeg(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	dir := t.TempDir()
	key, _ := hex.DecodeString(ffKeyHex)
	os.WriteFile(filepath.Join(dir, "k.key"), key, 0o644)
	os.WriteFile(filepath.Join(dir, "ki.txt"), []byte("k.key\nk.key\n"+ffIVHex+"\n"), 0o644)
	common := []string{"-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=2",
		"-f", "lavfi", "-i", "sine=duration=2", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "6M", "-g", "25",
		"-c:a", "aac", "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod"}
	for _, args := range [][]string{
		{"-hls_segment_filename", "c%d.ts", "clear.m3u8"},
		{"-hls_flags", "single_file", "-hls_segment_filename", "single.ts", "single.m3u8"},
		{"-hls_key_info_file", "ki.txt", "-hls_segment_filename", "e%d.ts", "enc.m3u8"},
	} {
		cmd := exec.Command("ffmpeg", append(slices.Clone(common), args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
		}
	}
	return dir
}

// TestFetchParts fetches ffmpeg streams in parts of several sizes, from an
// origin with and without Range support, and checks the bodies (order and
// bytes) and the requests (each byte once; one request per segment without
// Range support).
func TestFetchParts(t *testing.T) {
	t.Parallel()
	dirs := map[string]string{"small": ffmpegDir(t), "big": bigFFmpeg(t)}
	for _, set := range []string{"small", "big"} {
		dir := dirs[set]
		var clearSegs [][]byte
		for i := 0; ; i++ {
			b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("c%d.ts", i)))
			if err != nil {
				break
			}
			clearSegs = append(clearSegs, b)
		}
		if set == "big" && len(clearSegs[0]) < 256<<10 {
			t.Fatalf("big segments are only %d bytes", len(clearSegs[0]))
		}
		for _, ps := range []int{1024, 64 << 10, 1 << 20} {
			for _, mode := range []string{"ranges", "no ranges", "no ranges, chunked"} {
				for _, pl := range []string{"clear", "single", "enc"} {
					t.Run(fmt.Sprintf("%s/%d/%s/%s", set, ps, mode, pl), func(t *testing.T) {
						o := newPartOrigin(t, dir)
						o.noRange = mode != "ranges"
						o.chunked = mode == "no ranges, chunked"
						c := quick(&Client{})
						c.tune = partTuning(ps)
						src, err := c.Resolve(context.Background(), o.URL+"/x/"+pl+".m3u8", SelectOptions{})
						if err != nil {
							t.Fatal(err)
						}
						got, err := fetchBodies(c, src.Segments, 3)
						if err != nil {
							t.Fatal(err)
						}
						checkBodies(t, got, clearSegs)
						var off int64
						for i, seg := range clearSegs {
							uri := fmt.Sprintf("/x/%s%d.ts", pl[:1], i)
							if pl == "single" {
								uri = "/x/single.ts"
							}
							rs := o.ranges(uri)
							switch {
							case o.noRange && pl != "single" && len(rs) != 1:
								t.Errorf("%s requested %d times without Range support", uri, len(rs))
							case !o.noRange && pl != "single":
								size := int64(len(seg))
								if pl == "enc" {
									size = size + 16 - size%16
								}
								checkCover(t, uri, rs, 0, size)
								if want := (size + int64(ps) - 1) / int64(ps); int64(len(rs)) != want {
									t.Errorf("%s: %d requests, want %d", uri, len(rs), want)
								}
							}
							off += int64(len(seg))
						}
						if pl == "single" && !o.noRange {
							checkCover(t, "single.ts", o.ranges("/x/single.ts"), 0, off)
						}
						if pl == "single" && o.noRange && len(o.ranges("/x/single.ts")) != len(clearSegs) {
							t.Errorf("single.ts requested %d times, want one per segment", len(o.ranges("/x/single.ts")))
						}
					})
				}
			}
		}
	}
}

// TestFetchPartsTinyEncrypted streams AES-128 segments in 16-byte parts
// through an origin without Range support: every part boundary is a block
// boundary, and the padding may come in the part before an empty last one.
func TestFetchPartsTinyEncrypted(t *testing.T) {
	t.Parallel()
	dir := ffmpegDir(t)
	o := newPartOrigin(t, dir)
	o.noRange = true
	c := quick(&Client{})
	c.tune = partTuning(16)
	src, err := c.Resolve(context.Background(), o.URL+"/x/enc.m3u8", SelectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := fetchBodies(c, src.Segments, 2)
	if err != nil {
		t.Fatal(err)
	}
	checkBodies(t, got, clearSegments(t, dir))
}

// TestFetchPartRetry: a 503 on one part makes that part, and only it, be
// requested again.
func TestFetchPartRetry(t *testing.T) {
	t.Parallel()
	dir := ffmpegDir(t)
	o := newPartOrigin(t, dir)
	o.fail = func(uri, rng string, n int) int {
		if uri == "/x/c1.ts" && rng == "bytes=8192-12287" && n == 1 {
			return http.StatusServiceUnavailable
		}
		return 0
	}
	c := quick(&Client{})
	c.tune = partTuning(4096)
	var sleeps atomic.Int32 // this client's retries, whatever other tests sleep
	c.tune.sleep = func(ctx context.Context, _ time.Duration) error {
		sleeps.Add(1)
		return context.Cause(ctx)
	}
	src, err := c.Resolve(context.Background(), o.URL+"/x/clear.m3u8", SelectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := fetchBodies(c, src.Segments, 4)
	if err != nil {
		t.Fatal(err)
	}
	want := clearSegments(t, dir)
	checkBodies(t, got, want)
	if n := sleeps.Load(); n != 1 {
		t.Errorf("%d retries, want 1", n)
	}
	rs := o.ranges("/x/c1.ts")
	i := slices.Index(rs, "bytes=8192-12287")
	if i < 0 {
		t.Fatalf("ranges %v", rs)
	}
	checkCover(t, "c1.ts", slices.Delete(slices.Clone(rs), i, i+1), 0, int64(len(want[1])))
	for j := range 4 {
		if j == 1 {
			continue
		}
		checkCover(t, fmt.Sprintf("c%d.ts", j), o.ranges(fmt.Sprintf("/x/c%d.ts", j)), 0, int64(len(want[j])))
	}

	// A part that keeps failing fails the fetch, naming the segment.
	o.fail = func(uri, rng string, n int) int {
		if uri == "/x/c2.ts" && rng == "bytes=4096-8191" {
			return http.StatusBadGateway
		}
		return 0
	}
	c.Retries = 1
	_, err = fetchBodies(c, src.Segments, 4)
	if want := "origin answered 502 Bad Gateway for " + o.URL + "/x/c2.ts (after 2 attempts)"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

// TestFetchPartsBounded: requests in flight never exceed the concurrency, and
// the bytes fetched ahead of the consumer stay within concurrency × partSize.
func TestFetchPartsBounded(t *testing.T) {
	t.Parallel()
	dir := ffmpegDir(t)
	const ps, conc = 4096, 3
	var pl strings.Builder
	pl.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n")
	var sizes []int64
	for i := range 12 {
		fmt.Fprintf(&pl, "#EXTINF:1,\nc%d.ts?n=%d\n", i%4, i)
		sizes = append(sizes, int64(len(readFF(t, dir, fmt.Sprintf("c%d.ts", i%4)))))
	}
	pl.WriteString("#EXT-X-ENDLIST\n")
	// The playlist is served from a copy of dir.
	pdir := t.TempDir()
	for i := range 4 {
		os.WriteFile(filepath.Join(pdir, fmt.Sprintf("c%d.ts", i)), readFF(t, dir, fmt.Sprintf("c%d.ts", i)), 0o644)
	}
	os.WriteFile(filepath.Join(pdir, "many.m3u8"), []byte(pl.String()), 0o644)
	o := newPartOrigin(t, pdir)
	o.delay = time.Millisecond
	c := quick(&Client{})
	c.tune = partTuning(ps)
	src, err := c.Resolve(context.Background(), o.URL+"/x/many.m3u8", SelectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	base := o.served.Load()
	var consumed int64
	settled := settle(c)
	err = c.Fetch(context.Background(), src.Segments, conc, func(i int, body io.Reader) error {
		b, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		if int64(len(b)) != sizes[i] {
			return fmt.Errorf("segment %d: %d bytes, want %d", i, len(b), sizes[i])
		}
		consumed += int64(len(b))
		if err := settled.wait(body); err != nil { // a slow consumer: the fetches run ahead
			return err
		}
		if ahead := o.served.Load() - base - consumed; ahead > (conc+(conc+1)/2)*ps {
			t.Errorf("after segment %d: %d bytes fetched ahead, more than %d", i, ahead, (conc+(conc+1)/2)*ps)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if m := o.maxFlight.Load(); m > conc {
		t.Errorf("%d requests in flight, more than %d", m, conc)
	}
	for i := range 12 {
		uri := fmt.Sprintf("/x/c%d.ts?n=%d", i%4, i)
		checkCover(t, uri, o.ranges(uri), 0, sizes[i])
	}
}

// TestFetchPartsReleased: each block of fn's reader is given back as soon as it has
// been read (decrypted too), and the bytes come out whole.
func TestFetchPartsReleased(t *testing.T) {
	t.Parallel()
	dir := ffmpegDir(t)
	o := newPartOrigin(t, dir)
	c := quick(&Client{})
	c.tune = partTuning(1024)
	src, err := c.Resolve(context.Background(), o.URL+"/x/enc.m3u8", SelectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	clear := clearSegments(t, dir)
	err = c.Fetch(context.Background(), src.Segments, 3, func(i int, body io.Reader) error {
		want := clear[i]
		r := body.(*segReader)
		if h := r.SizeHint(); h < int64(len(want)) || h > int64(len(want))+16 {
			return fmt.Errorf("segment %d: SizeHint %d for %d bytes of clear text", i, h, len(want))
		}
		var got []byte
		buf := make([]byte, 100)
		for {
			n, err := r.Read(buf)
			got = append(got, buf[:n]...)
			r.f.mu.Lock()
			for k, p := range r.s.parts[:min(r.k+1, len(r.s.parts))] {
				for j, b := range p.blocks {
					if b != nil && (k < r.k || (j+1)*c.tune.blockSize <= r.pos) {
						r.f.mu.Unlock()
						return fmt.Errorf("segment %d: block %d of part %d is still held after it was read", i, j, k)
					}
				}
			}
			r.f.mu.Unlock()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		if r.k < 3 {
			return fmt.Errorf("segment %d: %d parts", i, r.k)
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("segment %d: wrong bytes", i)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFetchBudget: the blocks held never pass fetchBudget but for the part the reader
// waits for, also when the budget is smaller than one part, with and without
// decryption; the bytes come out whole and in order.
func TestFetchBudget(t *testing.T) {
	t.Parallel()
	dir := ffmpegDir(t)
	tune := partTuning(2048)
	tune.fetchBudget = 3 * tune.blockSize
	o := newPartOrigin(t, dir)
	for _, pl := range []string{"clear.m3u8", "enc.m3u8"} {
		t.Run(pl, func(t *testing.T) {
			c := quick(&Client{tune: tune})
			src, err := c.Resolve(context.Background(), o.URL+"/x/"+pl, SelectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			most := 0
			clear := clearSegments(t, dir)
			settled := settle(c)
			err = c.Fetch(context.Background(), src.Segments, 4, func(i int, body io.Reader) error {
				r := body.(*segReader)
				if err := settled.wait(body); err != nil { // the requests run ahead
					return err
				}
				var got []byte
				buf := make([]byte, 100)
				for {
					n, err := r.Read(buf)
					got = append(got, buf[:n]...)
					r.f.mu.Lock()
					used := r.f.used
					r.f.mu.Unlock()
					most = max(most, used)
					if used > tune.fetchBudget+tune.partSize {
						return fmt.Errorf("segment %d: %d bytes held, budget %d", i, used, tune.fetchBudget)
					}
					if err == io.EOF {
						break
					}
					if err != nil {
						return err
					}
				}
				if !bytes.Equal(got, clear[i]) {
					return fmt.Errorf("segment %d: wrong bytes", i)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if most < tune.fetchBudget {
				t.Errorf("at most %d bytes held: the budget (%d) was never reached", most, tune.fetchBudget)
			}
		})
	}
}
