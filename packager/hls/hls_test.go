package hls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	o.page("/live.m3u8", mediaHead+"#EXTINF:4,\na.ts\n#EXTINF:4,\nb.ts\n")
	o.page("/event.m3u8", mediaHead+"#EXT-X-PLAYLIST-TYPE:EVENT\n#EXTINF:4,\na.ts\n")
	o.page("/vod-noend.m3u8", mediaHead+"#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:4,\na.ts\n")
	o.page("/noheader.m3u8", "#EXT-X-TARGETDURATION:4\n#EXTINF:4,\na.ts\n#EXT-X-ENDLIST\n")
	o.page("/html.m3u8", "<html><body>Not here</body></html>")
	o.page("/notarget.m3u8", "#EXTM3U\n#EXTINF:4,\na.ts\n#EXT-X-ENDLIST\n")
	o.page("/badinf.m3u8", mediaHead+"#EXTINF:four,\na.ts\n#EXT-X-ENDLIST\n")
	o.page("/neginf.m3u8", mediaHead+"#EXTINF:-4,\na.ts\n#EXT-X-ENDLIST\n")
	o.page("/aes.m3u8", mediaHead+"#EXT-X-KEY:METHOD=AES-128,URI=\"k.key\"\n#EXTINF:4,\na.ts\n#EXT-X-ENDLIST\n")
	o.page("/keynone.m3u8", mediaHead+"#EXT-X-KEY:METHOD=NONE\n#EXTINF:4,\na.ts\n#EXT-X-ENDLIST\n")
	o.page("/fmp4.m3u8", "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4,\na.m4s\n#EXT-X-ENDLIST\n")
	o.page("/byterange.m3u8", "#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\n#EXT-X-BYTERANGE:100@0\nall.ts\n#EXT-X-ENDLIST\n")
	o.page("/gap.m3u8", "#EXTM3U\n#EXT-X-VERSION:8\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\n#EXT-X-GAP\na.ts\n#EXT-X-ENDLIST\n")
	o.page("/disc/index.m3u8", "\xef\xbb\xbf#EXTM3U\r\n#EXT-X-VERSION:3\r\n#EXT-X-TARGETDURATION:4\r\n#EXT-X-MEDIA-SEQUENCE:7\r\n"+
		"#EXTINF:4,\r\na.ts\r\n#EXT-X-DISCONTINUITY\r\n#EXTINF:2.5,\r\n/abs/b.ts?tok=1\r\n#EXTINF:1.5,\r\nhttp://cdn.example/c.ts\r\n#EXT-X-ENDLIST")
	o.page("/tie/master.m3u8", "#EXTM3U\n"+
		"#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=256x144\n../demo/144p/index.m3u8\n"+
		"#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=426x240\n../demo/240p/index.m3u8\n"+
		"#EXT-X-STREAM-INF:BANDWIDTH=100000,CODECS=\"mp4a.40.2\"\n../demo/144p/index.m3u8\n")
	o.page("/missingvariant/master.m3u8", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nnope.m3u8\n")
	o.page("/nested/master.m3u8", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nmaster.m3u8\n")
	o.page("/audio/master.m3u8", "#EXTM3U\n#EXT-X-VERSION:4\n"+
		"#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"fr\",LANGUAGE=\"fr\",URI=\"../demo/240p/index.m3u8\"\n"+
		"#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"en\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,URI=\"../demo/144p/index.m3u8\"\n"+
		"#EXT-X-STREAM-INF:BANDWIDTH=500000,RESOLUTION=426x240,AUDIO=\"aac\"\n../demo/240p/index.m3u8\n")
	o.fault("/redir/master.m3u8", func(w http.ResponseWriter, _ int) bool {
		w.Header().Set("Location", "/demo/master.m3u8")
		w.WriteHeader(http.StatusFound)
		return true
	})
	o.fault("/gone.m3u8", func(w http.ResponseWriter, _ int) bool {
		w.WriteHeader(http.StatusGone)
		return true
	})
	o.fault("/forbidden.m3u8", func(w http.ResponseWriter, _ int) bool {
		w.WriteHeader(http.StatusForbidden)
		return true
	})

	segPaths := func(dir string) []string {
		return []string{o.URL + dir + "/seg_000.ts", o.URL + dir + "/seg_001.ts", o.URL + dir + "/seg_002.ts"}
	}
	v240 := VariantInfo{Bandwidth: 400000, Width: 426, Height: 240, Codecs: []string{"avc1.640015", "mp4a.40.2"}}
	v144 := VariantInfo{Bandwidth: 200000, Width: 256, Height: 144, Codecs: []string{"avc1.640015", "mp4a.40.2"}}

	tests := []struct {
		name     string
		path     string
		opt      SelectOptions
		segs     []string
		dur      time.Duration
		variant  *VariantInfo
		audio    []string
		wantErr  error
		wantMsg  string // substring of the error message
		check    func(t *testing.T, s *Source)
		notFound bool
	}{
		{name: "master picks highest bandwidth", path: "/demo/master.m3u8", segs: segPaths("/demo/240p"), dur: 12 * time.Second, variant: &v240},
		{name: "max height 144", path: "/demo/master.m3u8", opt: SelectOptions{MaxHeight: 144}, segs: segPaths("/demo/144p"), dur: 12 * time.Second, variant: &v144},
		{name: "max height 239", path: "/demo/master.m3u8", opt: SelectOptions{MaxHeight: 239}, segs: segPaths("/demo/144p"), variant: &v144},
		{name: "max height below all takes the shortest", path: "/demo/master.m3u8", opt: SelectOptions{MaxHeight: 100}, segs: segPaths("/demo/144p"), variant: &v144},
		{name: "max height above all", path: "/demo/master.m3u8", opt: SelectOptions{MaxHeight: 1080}, segs: segPaths("/demo/240p"), variant: &v240},
		{name: "height 240", path: "/demo/master.m3u8", opt: SelectOptions{Height: 240}, segs: segPaths("/demo/240p"), variant: &v240},
		{name: "height 200: nearest below", path: "/demo/master.m3u8", opt: SelectOptions{Height: 200}, segs: segPaths("/demo/144p"), variant: &v144},
		{name: "height below all", path: "/demo/master.m3u8", opt: SelectOptions{Height: 100}, wantErr: ErrNoRendition, wantMsg: "no rendition of 100p or lower (it has 144p, 240p)", notFound: true},
		{name: "height of a media playlist", path: "/demo/144p/index.m3u8", opt: SelectOptions{Height: 1080}, wantErr: ErrNoRendition, wantMsg: "give no resolution", notFound: true},
		{name: "media playlist directly", path: "/demo/144p/index.m3u8", segs: segPaths("/demo/144p"), dur: 12 * time.Second, variant: &VariantInfo{}},
		{name: "redirect: relative URIs against final URL", path: "/redir/master.m3u8", segs: segPaths("/demo/240p"), variant: &v240,
			check: func(t *testing.T, s *Source) {
				if s.URL.Path != "/demo/240p/index.m3u8" {
					t.Errorf("URL = %s", s.URL)
				}
			}},
		{name: "bandwidth tie takes larger resolution", path: "/tie/master.m3u8", segs: segPaths("/demo/240p"),
			variant: &VariantInfo{Bandwidth: 400000, Width: 426, Height: 240}},
		{name: "separate audio rendition", path: "/audio/master.m3u8", segs: segPaths("/demo/240p"), audio: segPaths("/demo/144p")},
		{name: "discontinuity, CRLF, BOM, absolute URIs", path: "/disc/index.m3u8",
			segs: []string{o.URL + "/disc/a.ts", o.URL + "/abs/b.ts?tok=1", "http://cdn.example/c.ts"}, dur: 8 * time.Second,
			check: func(t *testing.T, s *Source) {
				var disc []bool
				var seq []int
				for _, sg := range s.Segments {
					disc = append(disc, sg.Discontinuity)
					seq = append(seq, sg.Sequence)
				}
				if fmt.Sprint(disc) != "[false true false]" || fmt.Sprint(seq) != "[7 8 9]" {
					t.Errorf("discontinuity %v, sequence %v", disc, seq)
				}
			}},
		{name: "VOD type without endlist", path: "/vod-noend.m3u8", segs: []string{o.URL + "/a.ts"}},
		{name: "key method NONE", path: "/keynone.m3u8", segs: []string{o.URL + "/a.ts"}},
		{name: "live", path: "/live.m3u8", wantErr: ErrLive, wantMsg: "has no EXT-X-ENDLIST"},
		{name: "event", path: "/event.m3u8", wantErr: ErrLive},
		{name: "404", path: "/nope/master.m3u8", wantErr: ErrNotFound, wantMsg: "origin answered 404 Not Found for " + o.URL + "/nope/master.m3u8", notFound: true},
		{name: "410", path: "/gone.m3u8", wantErr: ErrNotFound, notFound: true},
		{name: "403 is not not-found", path: "/forbidden.m3u8", wantMsg: "origin answered 403 Forbidden for " + o.URL + "/forbidden.m3u8"},
		{name: "missing variant is not not-found", path: "/missingvariant/master.m3u8", wantMsg: "origin answered 404 Not Found for " + o.URL + "/missingvariant/nope.m3u8"},
		{name: "no header", path: "/noheader.m3u8", wantErr: ErrMalformed, wantMsg: "no #EXTM3U header"},
		{name: "html", path: "/html.m3u8", wantErr: ErrMalformed, wantMsg: "malformed playlist " + o.URL + "/html.m3u8: the origin answered an HTML page, not an HLS playlist"},
		{name: "no target duration", path: "/notarget.m3u8", wantErr: ErrMalformed, wantMsg: "TARGETDURATION not set"},
		{name: "bad EXTINF", path: "/badinf.m3u8", wantErr: ErrMalformed},
		{name: "negative EXTINF", path: "/neginf.m3u8", wantErr: ErrMalformed, wantMsg: "invalid duration"},
		{name: "variant is a master", path: "/nested/master.m3u8", wantErr: ErrMalformed, wantMsg: "expected a media playlist"},
		{name: "AES-128", path: "/aes.m3u8", segs: []string{o.URL + "/a.ts"}, check: func(t *testing.T, s *Source) {
			if k := s.Segments[0].Key; k == nil || k.URL.String() != o.URL+"/k.key" || k.IV != nil {
				t.Errorf("key %+v", k)
			}
		}},
		{name: "fMP4", path: "/fmp4.m3u8", segs: []string{o.URL + "/a.m4s"}, check: func(t *testing.T, s *Source) {
			if m := s.Segments[0].Map; m == nil || m.URL.String() != o.URL+"/init.mp4" || m.Range != nil || m.Key != nil {
				t.Errorf("map %+v", m)
			}
		}},
		{name: "byte range", path: "/byterange.m3u8", segs: []string{o.URL + "/all.ts"}, check: func(t *testing.T, s *Source) {
			if r := s.Segments[0].Range; r == nil || *r != (ByteRange{0, 100}) {
				t.Errorf("range %v", r)
			}
		}},
		{name: "only gaps", path: "/gap.m3u8", wantErr: ErrMalformed, wantMsg: "every segment is a gap"},
	}
	c := quick(&Client{AllowedHosts: []string{"CDN.example."}}) // an absolute URI points there
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := c.Resolve(context.Background(), o.URL+tt.path, tt.opt)
			if tt.wantErr != nil || tt.wantMsg != "" {
				if err == nil {
					t.Fatalf("no error, got %+v", s)
				}
				t.Log(err)
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("error %q is not %q", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("error %q does not contain %q", err, tt.wantMsg)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error spans lines: %q", err)
				}
				if !tt.notFound && errors.Is(err, ErrNotFound) {
					t.Errorf("error %q should not be ErrNotFound", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			var sum time.Duration
			for _, sg := range s.Segments {
				got = append(got, sg.URL.String())
				sum += sg.Duration
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.segs) {
				t.Errorf("segments\n got %v\nwant %v", got, tt.segs)
			}
			if s.Duration != sum || (tt.dur != 0 && s.Duration != tt.dur) {
				t.Errorf("duration %v, sum %v, want %v", s.Duration, sum, tt.dur)
			}
			if tt.variant != nil && fmt.Sprintf("%+v", s.Variant) != fmt.Sprintf("%+v", *tt.variant) {
				t.Errorf("variant %+v, want %+v", s.Variant, *tt.variant)
			}
			if tt.audio == nil && s.Audio != nil {
				t.Errorf("unexpected audio source %s", s.Audio.URL)
			}
			if tt.audio != nil {
				if s.Audio == nil {
					t.Fatal("no audio source")
				}
				var a []string
				for _, sg := range s.Audio.Segments {
					a = append(a, sg.URL.String())
				}
				if fmt.Sprint(a) != fmt.Sprint(tt.audio) {
					t.Errorf("audio segments %v, want %v", a, tt.audio)
				}
			}
			if tt.check != nil {
				tt.check(t, s)
			}
		})
	}

	t.Run("bad URL", func(t *testing.T) {
		for _, u := range []string{"ftp://x/y.m3u8", "/relative.m3u8", "http://u:secret@[bad"} {
			_, err := c.Resolve(context.Background(), u, SelectOptions{})
			if err == nil || strings.Contains(err.Error(), "secret") {
				t.Errorf("Resolve(%q) = %v", u, err)
			}
		}
	})
}

func TestHeadersAndCredentials(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	o.fault("/demo/240p/seg_001.ts", func(w http.ResponseWriter, _ int) bool {
		w.WriteHeader(http.StatusForbidden)
		return true
	})
	u := strings.Replace(o.URL, "http://", "http://user:s3cret@", 1) + "/demo/master.m3u8?token=t0ken"
	c := quick(&Client{Header: http.Header{"Host": {"origin.example"}, "X-Origin-Auth": {"abc"}}})
	src, err := c.Resolve(context.Background(), u, SelectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	r := o.lastReq
	o.mu.Unlock()
	if r.Host != "origin.example" || r.Header.Get("X-Origin-Auth") != "abc" || r.Header.Get("Host") != "" {
		t.Errorf("request Host %q, headers %v", r.Host, r.Header)
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != "user" || pass != "s3cret" {
		t.Errorf("basic auth from URL userinfo not sent: %v %v %v", user, pass, ok)
	}
	err = c.Fetch(context.Background(), src.Segments, 2, func(int, io.Reader) error { return nil })
	var oe *OriginError
	if !errors.As(err, &oe) || oe.Status != http.StatusForbidden {
		t.Fatalf("err = %v", err)
	}
	want := "origin answered 403 Forbidden for " + o.URL + "/demo/240p/seg_001.ts"
	if err.Error() != want || oe.URL != o.URL+"/demo/240p/seg_001.ts" {
		t.Errorf("error %q\n want %q", err, want)
	}
	if n := o.count("/demo/240p/seg_001.ts"); n != 1 {
		t.Errorf("a 403 was requested %d times, want 1 (no retry)", n)
	}
}

func TestFetchInOrder(t *testing.T) {
	t.Parallel()
	for _, conc := range []int{1, 2, 8, 0} {
		t.Run(fmt.Sprintf("concurrency=%d", conc), func(t *testing.T) {
			o := newOrigin(t)
			c := quick(&Client{})
			src, err := c.Resolve(context.Background(), o.URL+"/demo/master.m3u8", SelectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var got [][]byte
			err = c.Fetch(context.Background(), src.Segments, conc, func(i int, body io.Reader) error {
				if i != len(got) {
					t.Errorf("got segment %d, want %d", i, len(got))
				}
				b, err := io.ReadAll(body)
				got = append(got, b)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 {
				t.Fatalf("%d segments delivered", len(got))
			}
			for i, b := range got {
				if want := fixture(t, fmt.Sprintf("demo/240p/seg_%03d.ts", i)); !bytes.Equal(b, want) {
					t.Errorf("segment %d: %d bytes differ from the file's %d", i, len(b), len(want))
				}
				if n := o.count(fmt.Sprintf("/demo/240p/seg_%03d.ts", i)); n != 1 {
					t.Errorf("segment %d requested %d times", i, n)
				}
			}
		})
	}
}

func TestFetchManyBoundedConcurrency(t *testing.T) {
	t.Parallel()
	const n = 40
	for _, conc := range []int{1, 3, 8} {
		t.Run(fmt.Sprintf("concurrency=%d", conc), func(t *testing.T) {
			o := newOrigin(t)
			o.page("/many/index.m3u8", manyPlaylist(n))
			c := quick(&Client{})
			src, err := c.Resolve(context.Background(), o.URL+"/many/index.m3u8", SelectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			o.mu.Lock()
			o.delay = 5 * time.Millisecond
			o.mu.Unlock()
			o.maxFlight.Store(0)
			files := [][]byte{fixture(t, "demo/144p/seg_000.ts"), fixture(t, "demo/144p/seg_001.ts"), fixture(t, "demo/144p/seg_002.ts")}
			next := 0
			settled := settle(c)
			err = c.Fetch(context.Background(), src.Segments, conc, func(i int, body io.Reader) error {
				if i != next {
					t.Fatalf("got %d, want %d", i, next)
				}
				next++
				if i == 0 {
					// A slow consumer: the fetcher runs ahead by at
					// most conc segments, so memory stays bounded.
					if err := settled.wait(body); err != nil {
						return err
					}
					if started := o.total() - 1; started > 1+conc || started < conc {
						t.Errorf("%d segments requested while the consumer held segment 0, want %d to %d", started, conc, 1+conc)
					}
				}
				b, _ := io.ReadAll(body)
				if !bytes.Equal(b, files[i%3]) {
					t.Errorf("segment %d: wrong bytes", i)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if next != n {
				t.Fatalf("delivered %d", next)
			}
			if m := o.maxFlight.Load(); m > int64(conc) || (conc > 1 && m < 2) {
				t.Errorf("max in-flight requests %d, limit %d", m, conc)
			}
			for i := range n {
				if k := o.count(fmt.Sprintf("/many/%d.ts", i)); k != 1 {
					t.Errorf("segment %d requested %d times", i, k)
				}
			}
		})
	}
}

func TestFetchCancel(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	c := quick(&Client{})
	src, err := c.Resolve(context.Background(), o.URL+"/demo/144p/index.m3u8", SelectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Cancelled once segment 0 is delivered and segment 1's request hangs.
	ctx, cancel := context.WithCancel(context.Background())
	delivered, hanging := make(chan struct{}), make(chan struct{})
	hang := sync.OnceFunc(func() { close(hanging) })
	cancelled := make(chan time.Time, 1)
	go func() {
		<-delivered
		<-hanging
		cancelled <- time.Now()
		cancel()
	}()
	o.mu.Lock()
	o.blockers["/demo/144p/seg_001.ts"] = true
	o.onBlock = func(string) { hang() }
	o.mu.Unlock()
	var got []int
	err = c.Fetch(ctx, src.Segments, 2, func(i int, _ io.Reader) error {
		got = append(got, i)
		if i == 0 {
			close(delivered)
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	select {
	case at := <-cancelled:
		if d := time.Since(at); d > 2*time.Second {
			t.Errorf("took %v to stop", d)
		}
	default:
		t.Error("Fetch returned before it was cancelled")
	}
	if fmt.Sprint(got) != "[0]" {
		t.Errorf("delivered %v", got)
	}

	// Resolve stops too.
	o.mu.Lock()
	o.blockers["/demo/master.m3u8"] = true
	o.onBlock = nil
	o.mu.Unlock()
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Resolve(ctx, o.URL+"/demo/master.m3u8", SelectOptions{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Resolve err = %v", err)
	}
}

func TestFetchConsumerError(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	o.page("/many/index.m3u8", manyPlaylist(20))
	c := quick(&Client{})
	src, err := c.Resolve(context.Background(), o.URL+"/many/index.m3u8", SelectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk full")
	calls := 0
	err = c.Fetch(context.Background(), src.Segments, 4, func(i int, _ io.Reader) error {
		calls++
		if i == 2 {
			return boom
		}
		return nil
	})
	if err != boom || calls != 3 {
		t.Errorf("err = %v after %d calls", err, calls)
	}
	if n := o.total() - 1; n > 3+4 {
		t.Errorf("%d segments requested after the consumer stopped at 2", n)
	}
}

func TestFetchLaterFailureStopsEarly(t *testing.T) {
	t.Parallel()
	// Segment 0 is slow, segment 1 fails for good: the failure is
	// reported without waiting for segment 0.
	o := newOrigin(t)
	o.mu.Lock()
	o.blockers["/demo/144p/seg_000.ts"] = true
	o.mu.Unlock()
	o.fault("/demo/144p/seg_001.ts", func(w http.ResponseWriter, _ int) bool {
		w.WriteHeader(http.StatusNotFound)
		return true
	})
	c := quick(&Client{})
	src, err := c.Resolve(context.Background(), o.URL+"/demo/144p/index.m3u8", SelectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- c.Fetch(context.Background(), src.Segments, 3, func(int, io.Reader) error {
			t.Error("fn called")
			return nil
		})
	}()
	select {
	case err := <-done:
		var oe *OriginError
		if !errors.As(err, &oe) || oe.Status != 404 {
			t.Errorf("err = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Fetch did not return")
	}
}

func TestFetchEmpty(t *testing.T) {
	t.Parallel()
	if err := quick(&Client{}).Fetch(context.Background(), nil, 4, nil); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkFetch fetches 30 segments from an origin that takes 20ms to
// answer each request (a distant origin), one at a time as ffmpeg does and
// in parallel.
func BenchmarkFetch(b *testing.B) {
	for _, conc := range []int{1, 8} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			o := newOrigin(b)
			o.page("/many/index.m3u8", manyPlaylist(30))
			c := quick(&Client{})
			src, err := c.Resolve(context.Background(), o.URL+"/many/index.m3u8", SelectOptions{})
			if err != nil {
				b.Fatal(err)
			}
			o.mu.Lock()
			o.delay = 20 * time.Millisecond
			o.mu.Unlock()
			b.ReportAllocs()
			b.ResetTimer()
			var n int64
			for b.Loop() {
				err := c.Fetch(context.Background(), src.Segments, conc, func(_ int, body io.Reader) error {
					k, err := io.Copy(io.Discard, body)
					n += k
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(n / int64(b.N))
		})
	}
}
