package hls

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager/fmp4"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// countingWriter counts the body bytes an origin sends.
type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n.Add(int64(n))
	return n, err
}

// indexSource runs the segments of src through a demuxer in the index mode as the
// packager feeds it (init section, discontinuity, EXTINF), segment(i, d) indexing
// segment i; it returns the samples as text (tracks by value).
func indexSource(ctx context.Context, c *Client, src *Source, segment func(i int, d *fmp4.Demuxer, emit func(fmp4.IndexedSample) error) error) ([]string, error) {
	d := fmp4.NewIndexDemuxer()
	var out []string
	var m *Map
	for i, s := range src.Segments {
		if s.Map != m {
			init, err := c.FetchMap(ctx, s.Map)
			if err != nil {
				return nil, err
			}
			if err := d.Init(init); err != nil {
				return nil, err
			}
			m = s.Map
		}
		if s.Discontinuity && i > 0 {
			d.Discontinuity(s.Start)
		}
		d.Expect(media.SegmentInfo{Start: s.Start, Duration: s.Duration})
		err := segment(i, d, func(x fmp4.IndexedSample) error {
			tr := *x.Track
			x.Track = nil
			out = append(out, fmt.Sprintf("%d %+v %+v", i, tr, x))
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("segment %d: %w", i, err)
		}
	}
	return out, nil
}

// TestIndexHeadsFromOrigin: for the fMP4 flavours of the conformance suite, served by a
// local HTTP origin, the samples indexed from segment heads and moofs read with ReadHead
// and IndexSpans (Range requests for each moof, the first MPEG audio frame) are those
// SegmentIndex gives from whole segments, and the origin sends a small part of the
// segments' bytes for them.
func TestIndexHeadsFromOrigin(t *testing.T) {
	t.Parallel()
	root := filepath.Join(testutil.RepoRoot(t), "testdata", "conformance", "streams")
	var sent, inflight atomic.Int64
	files := http.FileServer(http.Dir(root))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inflight.Add(1)
		defer inflight.Add(-1)
		files.ServeHTTP(countingWriter{w, &sent}, r)
	}))
	t.Cleanup(srv.Close)
	// counted is what the origin sent once its handlers are done (a client may have
	// read a whole answer before the handler's Write returned).
	counted := func() int64 {
		for inflight.Load() != 0 {
			time.Sleep(time.Millisecond)
		}
		return sent.Load()
	}
	dirs, err := filepath.Glob(filepath.Join(root, "fmp4-*"))
	if err != nil {
		t.Fatal(err)
	}
	dirs = append(dirs, filepath.Join(root, "byterange-fmp4"), filepath.Join(root, "audio-only-fmp4"))
	if len(dirs) < 9 {
		t.Fatalf("only %d fMP4 flavours found", len(dirs))
	}
	// The suite's segments are ~10 KB, their moofs a few hundred bytes: a first read of
	// 1 KiB is to them what FirstHeadSize is to segments of megabytes.
	const first = 1 << 10
	ctx := context.Background()
	var allHeads, allWhole int64
	for _, dir := range dirs {
		name := filepath.Base(dir)
		c := &Client{}
		src, err := c.Resolve(ctx, srv.URL+"/"+name+"/play.m3u8", SelectOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Whole segments.
		var whole int64
		want, err := indexSource(ctx, c, src, func(i int, d *fmp4.Demuxer, emit func(fmp4.IndexedSample) error) error {
			s := src.Segments[i]
			var buf bytes.Buffer
			if _, err := c.getRange(ctx, s.URL, s.hosts, s.Range, &buf, c.Limits.segmentSize()); err != nil {
				return err
			}
			whole += int64(buf.Len())
			return d.SegmentIndex(bytes.NewReader(buf.Bytes()), emit)
		})
		if err != nil {
			t.Fatalf("%s, whole segments: %v", name, err)
		}
		// Heads: count what the origin sends for them.
		var heads, read int64
		got, err := indexSource(ctx, c, src, func(i int, d *fmp4.Demuxer, emit func(fmp4.IndexedSample) error) error {
			before := counted()
			defer func() { heads += counted() - before }()
			s := src.Segments[i]
			head, size, err := c.ReadHead(ctx, s, first)
			if err != nil {
				return err
			}
			p := &fmp4.Pieces{}
			p.Add(0, head)
			// The boxes are walked first (each moof by its own range), then the demuxer
			// indexes, asking for the first MPEG audio frame when it needs it.
			n, err := c.IndexSpans(ctx, s, size, first, 0, func() (int64, int64, error) {
				if off, n := fmp4.NextRange(p, size); n > 0 {
					return off, n, nil
				}
				return d.SegmentPiecesIndex(p, size, emit)
			}, p.Add)
			read += int64(len(head)) + n
			return err
		})
		if err != nil {
			t.Fatalf("%s, heads: %v", name, err)
		}
		if len(got) != len(want) || len(got) == 0 {
			t.Fatalf("%s: %d samples from heads, %d from whole segments", name, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: sample %d from the heads %s; from whole segments %s", name, i, got[i], want[i])
			}
		}
		if heads != read || heads > whole {
			t.Errorf("%s: the origin sent %d bytes for heads of %d bytes (whole segments: %d)", name, heads, read, whole)
		}
		t.Logf("%s: %d samples; heads %d bytes from the origin, whole segments %d", name, len(got), heads, whole)
		allHeads += heads
		allWhole += whole
	}
	t.Logf("all: heads %d bytes, whole segments %d (%.1f%%)", allHeads, allWhole, 100*float64(allHeads)/float64(allWhole))
	if allHeads*2 > allWhole {
		t.Errorf("the heads took %d bytes of the origin, more than half the segments' %d", allHeads, allWhole)
	}
}

// TestReadHead: the size of a segment comes from the answer (Content-Range's total, a
// 200's Content-Length, a body shorter than asked); an answer that does not tell it is
// an error, as is a 206 of other bytes than asked.
func TestReadHead(t *testing.T) {
	t.Parallel()
	body := bytes.Repeat([]byte("0123456789"), 100) // 1000 bytes
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ignore": // a server that ignores Range
			w.Header().Set("Content-Length", "1000")
			w.Write(body)
		case "/star": // 206 without the total
			w.Header().Set("Content-Range", "bytes 0-99/*")
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(body[:100])
		case "/wrong": // 206 of other bytes
			w.Header().Set("Content-Range", "bytes 10-109/1000")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(body[10:110])
		default:
			http.ServeContent(w, r, "x", time.Time{}, bytes.NewReader(body))
		}
	}))
	t.Cleanup(srv.Close)
	c := &Client{Retries: -1}
	seg := func(path string) Segment {
		u, _ := url.Parse(srv.URL + path)
		return Segment{URL: u}
	}
	ctx := context.Background()
	for _, tc := range []struct {
		path    string
		n, size int64
		ok      bool
	}{
		{"/ok", 100, 1000, true},
		{"/ok", 5000, 1000, true},
		{"/ignore", 100, 1000, true},
		{"/star", 100, 0, false},
		{"/wrong", 100, 0, false},
	} {
		head, size, err := c.ReadHead(ctx, seg(tc.path), tc.n)
		if (err == nil) != tc.ok {
			t.Errorf("%s, %d bytes: %v", tc.path, tc.n, err)
			continue
		}
		if tc.ok && (size != tc.size || !bytes.Equal(head, body[:min(tc.n, tc.size)])) {
			t.Errorf("%s, %d bytes: %d bytes of a %d-byte segment", tc.path, tc.n, len(head), size)
		}
	}
	// A byte range of the playlist: its length is the size; the head is within it.
	u, _ := url.Parse(srv.URL + "/ok")
	head, size, err := c.ReadHead(ctx, Segment{URL: u, Range: &ByteRange{Offset: 200, Length: 300}}, 100)
	if err != nil || size != 300 || !bytes.Equal(head, body[200:300]) {
		t.Errorf("byte range: %d bytes of %d (%v)", len(head), size, err)
	}
}
