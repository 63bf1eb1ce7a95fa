package hls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHostPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		origin  string
		allowed []string
		url     string
		want    bool
	}{
		{"http://origin.example/v/m.m3u8", nil, "http://origin.example/seg.ts", true},
		{"http://origin.example/v/m.m3u8", nil, "http://ORIGIN.example./seg.ts", true},
		{"http://origin.example/v/m.m3u8", nil, "https://origin.example/seg.ts", true}, // 80 and 443 mix
		{"http://origin.example/v/m.m3u8", nil, "http://origin.example:80/seg.ts", true},
		{"http://origin.example/v/m.m3u8", nil, "http://origin.example:8080/seg.ts", false},
		{"http://origin.example:8080/m.m3u8", nil, "http://origin.example:8080/seg.ts", true},
		{"http://origin.example:8080/m.m3u8", nil, "http://origin.example/seg.ts", false},
		{"http://origin.example/v/m.m3u8", nil, "http://other.example/seg.ts", false},
		{"http://origin.example/v/m.m3u8", nil, "http://169.254.169.254/latest/meta-data/", false},
		{"http://10.0.0.5:8080/m.m3u8", nil, "http://127.0.0.1:2019/config/", false},
		{"http://127.0.0.1:8080/m.m3u8", nil, "http://127.0.0.1:2019/config/", false},
		{"http://127.0.0.1:8080/m.m3u8", nil, "http://localhost:8080/seg.ts", false},
		{"http://origin.example/v/m.m3u8", nil, "file:///etc/passwd", false},
		{"http://origin.example/v/m.m3u8", nil, "ftp://origin.example/seg.ts", false},
		{"http://origin.example/v/m.m3u8", nil, "data:video/mp2t;base64,AAAA", false},
		{"http://origin.example/v/m.m3u8", []string{"cdn.example"}, "https://CDN.example/seg.ts", true},
		{"http://origin.example/v/m.m3u8", []string{"cdn.example"}, "http://cdn.example:8443/seg.ts", false},
		{"http://origin.example:8080/m.m3u8", []string{"cdn.example"}, "http://cdn.example:8080/seg.ts", true}, // the origin's port
		{"http://origin.example/v/m.m3u8", []string{"cdn.example:8443"}, "http://cdn.example:8443/seg.ts", true},
		{"http://origin.example/v/m.m3u8", []string{"cdn.example:8443"}, "https://cdn.example/seg.ts", false},
		{"http://origin.example/v/m.m3u8", []string{"*.cdn.example"}, "https://a.cdn.example/seg.ts", true},
		{"http://origin.example/v/m.m3u8", []string{"*.cdn.example"}, "https://a.b.cdn.example/seg.ts", true},
		{"http://origin.example/v/m.m3u8", []string{"*.cdn.example"}, "https://cdn.example/seg.ts", false},
		{"http://origin.example/v/m.m3u8", []string{"*.cdn.example"}, "https://evilcdn.example/seg.ts", false},
		{"http://origin.example/v/m.m3u8", []string{"*.cdn.example"}, "https://cdn.example.evil/seg.ts", false},
		{"http://origin.example/v/m.m3u8", []string{"[2001:db8::1]:8080"}, "http://[2001:db8::1]:8080/seg.ts", true},
		{"http://origin.example/v/m.m3u8", []string{"2001:db8::1"}, "http://[2001:db8::1]/seg.ts", true},
		{"http://origin.example/v/m.m3u8", []string{"", " "}, "http://x.example/seg.ts", false},
	}
	for _, tt := range tests {
		p := newHostPolicy(mustURL(tt.origin), tt.allowed)
		if got := p.allows(mustURL(tt.url)); got != tt.want {
			t.Errorf("origin %s, allowed %q: allows(%s) = %v, want %v", tt.origin, tt.allowed, tt.url, got, tt.want)
		}
	}
}

// foreign is a second server on 127.0.0.1 (another port: another host for
// the policy) that counts the requests it gets.
func foreign(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.ServeFile(w, r, fixtureDir+"/demo/144p/"+r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
	}))
	t.Cleanup(s.Close)
	return s, &n
}

func TestResolveForbiddenHosts(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	f, hits := foreign(t)
	const head = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n"
	seg := func(uri string) string { return "#EXTINF:4,\n" + uri + "\n#EXT-X-ENDLIST\n" }
	tests := []struct {
		name, playlist string
		allowed        []string
		wantMsg        string // "" → allowed
	}{
		{"metadata address", seg("http://169.254.169.254/latest/meta-data/"), nil,
			"host not allowed: segment 1 of playlist {origin}/p/index.m3u8 is at http://169.254.169.254/latest/meta-data/, which is neither the origin's host (127.0.0.1:{port}) nor in allowed_hosts"},
		{"admin API", seg("http://127.0.0.1:2019/config/"), nil, "is at http://127.0.0.1:2019/config/"},
		{"other port", seg(f.URL + "/seg_000.ts"), nil, "is at " + f.URL + "/seg_000.ts"},
		{"other port allowed", seg(f.URL + "/seg_000.ts"), []string{strings.TrimPrefix(f.URL, "http://")}, ""},
		{"localhost is another host", seg("http://localhost:{port}/seg.ts"), nil, "is at http://localhost:"},
		{"localhost allowed", seg("http://localhost:{port}/seg.ts"), []string{"LocalHost"}, ""},
		{"credentials stripped", seg("http://user:pw@169.254.169.254/x?sig=secret"), nil, "is at http://169.254.169.254/x,"},
		{"file", seg("file:///etc/passwd"), nil, "URL not allowed: segment 1 of playlist {origin}/p/index.m3u8 is file:///etc/passwd; only http and https URLs are fetched"},
		{"ftp", seg("ftp://127.0.0.1/seg.ts"), nil, "is ftp://127.0.0.1/seg.ts; only http"},
		{"data segment", seg("data:video/mp2t;base64,R0dHRw=="), nil, "is data:video/mp2t;base64,R0dHRw==; only http"},
		{"map", "#EXT-X-MAP:URI=\"http://169.254.169.254/init.mp4\"\n" + seg("a.m4s"), nil, "EXT-X-MAP of playlist"},
		{"key", "#EXT-X-KEY:METHOD=AES-128,URI=\"http://169.254.169.254/k\"\n" + seg("a.ts"), nil, "EXT-X-KEY of playlist"},
		{"data key", "#EXT-X-KEY:METHOD=AES-128,URI=\"data:text/plain;base64,AAECAwQFBgcICQoLDA0ODw==\"\n" + seg("a.ts"), nil, ""},
		{"relative escapes nothing", seg("../../../x/seg.ts"), nil, ""},
		{"scheme-relative", seg("//169.254.169.254/seg.ts"), nil, "is at http://169.254.169.254/seg.ts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := o.URL[strings.LastIndex(o.URL, ":")+1:]
			r := strings.NewReplacer("{origin}", o.URL, "{port}", port)
			o.page("/p/index.m3u8", head+r.Replace(tt.playlist))
			c := quick(&Client{AllowedHosts: tt.allowed})
			before := hits.Load()
			src, err := c.Resolve(context.Background(), o.URL+"/p/index.m3u8", SelectOptions{})
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(src.Segments) != 1 {
					t.Fatalf("%d segments", len(src.Segments))
				}
				return
			}
			if !errors.Is(err, ErrForbiddenHost) || errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrForbiddenHost only", err)
			}
			if want := r.Replace(tt.wantMsg); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q\ndoes not contain %q", err, want)
			}
			if msg := err.Error(); strings.Contains(msg, "pw") || strings.Contains(msg, "secret") {
				t.Errorf("error %q leaks credentials", msg)
			}
			if hits.Load() != before {
				t.Error("the foreign host was asked")
			}
		})
	}

	// Variants and renditions of a multivariant playlist.
	for _, tt := range []struct{ name, playlist, want string }{
		{"variant", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n" + f.URL + "/v.m3u8\n", "variant URI of playlist"},
		{"rendition", "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"x\",DEFAULT=YES,URI=\"" + f.URL + "/a.m3u8\"\n" +
			"#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"a\"\n/demo/144p/index.m3u8\n", "audio rendition URI of playlist"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o.page("/p/master.m3u8", tt.playlist)
			_, err := quick(&Client{}).Resolve(context.Background(), o.URL+"/p/master.m3u8", SelectOptions{})
			if !errors.Is(err, ErrForbiddenHost) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v", err)
			}
		})
	}
	if hits.Load() != 0 {
		t.Errorf("the foreign host got %d requests", hits.Load())
	}
}

func TestRedirects(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	f, hits := foreign(t)
	fhost := strings.TrimPrefix(f.URL, "http://")
	redirect := func(to func(n int) string) func(w http.ResponseWriter, n int) bool {
		return func(w http.ResponseWriter, n int) bool {
			if loc := to(n); loc != "" {
				w.Header().Set("Location", loc)
				w.WriteHeader(http.StatusFound)
				return true
			}
			return false
		}
	}
	const seg = "/demo/144p/seg_001.ts"
	tests := []struct {
		name    string
		path    string // where the fault is
		to      func(n int) string
		allowed []string
		wantErr string // "" → success
		foreign bool   // the foreign host serves the segment
	}{
		{name: "same host", path: seg, to: func(n int) string {
			if n == 1 {
				return seg + "?moved"
			}
			return ""
		}},
		{name: "foreign host", path: seg, to: func(int) string { return f.URL + "/seg_001.ts?sig=secret" },
			wantErr: "origin request for {origin}" + seg + " failed: host not allowed: the origin answered 302 redirecting to " + f.URL + "/seg_001.ts, which is neither the origin's host (127.0.0.1:{port}) nor in allowed_hosts"},
		{name: "foreign host allowed", path: seg, to: func(int) string { return f.URL + "/seg_001.ts" }, allowed: []string{fhost}, foreign: true},
		{name: "metadata", path: seg, to: func(int) string { return "http://169.254.169.254/latest/meta-data/" },
			wantErr: "redirecting to http://169.254.169.254/latest/meta-data/, which is neither"},
		{name: "loop", path: seg, to: func(n int) string { return fmt.Sprintf("%s?n=%d", seg, n) },
			wantErr: "origin request for {origin}" + seg + " failed: more than 5 redirects"},
		{name: "top-level playlist to a foreign host", path: "/demo/144p/index.m3u8", to: func(int) string { return f.URL + "/index.m3u8" },
			wantErr: "origin request for {origin}/demo/144p/index.m3u8 failed: host not allowed: the origin answered 302 redirecting to " + f.URL + "/index.m3u8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o.fault(tt.path, redirect(tt.to))
			defer o.fault(tt.path, nil)
			o.mu.Lock()
			o.counts = map[string]int{}
			o.mu.Unlock()
			hits.Store(0)
			c := quick(&Client{AllowedHosts: tt.allowed})
			src, err := c.Resolve(context.Background(), o.URL+"/demo/144p/index.m3u8", SelectOptions{})
			if err == nil {
				err = c.Fetch(context.Background(), src.Segments, 2, func(i int, body io.Reader) error {
					if b, _ := io.ReadAll(body); !bytes.Equal(b, fixture(t, fmt.Sprintf("demo/144p/seg_%03d.ts", i))) {
						t.Errorf("segment %d: wrong bytes", i)
					}
					return nil
				})
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := hits.Load() > 0; got != tt.foreign {
					t.Errorf("foreign host asked: %v, want %v", got, tt.foreign)
				}
				return
			}
			port := o.URL[strings.LastIndex(o.URL, ":")+1:]
			want := strings.NewReplacer("{origin}", o.URL, "{port}", port).Replace(tt.wantErr)
			var oe *OriginError
			if !errors.As(err, &oe) || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v\nwant an *OriginError containing %q", err, want)
			}
			if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "attempts") {
				t.Errorf("error %q leaks the query or was retried", err)
			}
			if strings.Contains(want, "host not allowed") && !errors.Is(err, ErrForbiddenHost) {
				t.Errorf("%v is not ErrForbiddenHost", err)
			}
			if hits.Load() != 0 {
				t.Errorf("the foreign host got %d requests", hits.Load())
			}
			if n := o.count(tt.path); n > maxRedirects+1 {
				t.Errorf("%s requested %d times", tt.path, n)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	o.page("/l/many.m3u8", manyPlaylist(20))
	o.page("/l/master.m3u8", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nmany.m3u8\n")
	o.page("/l/long.m3u8", mediaHead+"#EXTINF:3600,\na.ts\n#EXTINF:3600,\nb.ts\n#EXT-X-ENDLIST\n")
	o.page("/l/fmp4.m3u8", mediaHead+"#EXT-X-MAP:URI=\"/demo/144p/seg_000.ts\"\n#EXTINF:4,\n/demo/144p/seg_001.ts\n#EXT-X-ENDLIST\n")
	o.page("/l/key.m3u8", mediaHead+"#EXT-X-KEY:METHOD=AES-128,URI=\"/demo/144p/seg_000.ts\"\n#EXTINF:4,\n/demo/144p/seg_001.ts\n#EXT-X-ENDLIST\n")
	tests := []struct {
		name    string
		limits  Limits
		path    string
		fetch   bool   // the limit shows when fetching
		wantMsg string // "" → success
	}{
		{name: "segments", limits: Limits{Segments: 19}, path: "/l/many.m3u8",
			wantMsg: "limit exceeded: the playlist %s/l/many.m3u8 has 20 segments, more than limits.segments (19)"},
		{name: "segments at the limit", limits: Limits{Segments: 20}, path: "/l/many.m3u8"},
		{name: "duration", limits: Limits{Duration: 90 * time.Minute}, path: "/l/long.m3u8",
			wantMsg: "limit exceeded: the playlist %s/l/long.m3u8 lasts 2h0m0s, more than limits.duration (1h30m0s)"},
		{name: "default duration", path: "/l/long.m3u8"},
		{name: "playlist size", limits: Limits{PlaylistSize: 100}, path: "/demo/master.m3u8",
			wantMsg: "origin request for %s/demo/master.m3u8 failed: response too large: 227 bytes, more than limits.playlist_size (100 bytes)"},
		{name: "variant playlist size", limits: Limits{PlaylistSize: 100}, path: "/l/master.m3u8",
			wantMsg: "origin request for %s/l/many.m3u8 failed: response too large: "},
		{name: "segment size", limits: Limits{SegmentSize: 210_000}, path: "/demo/master.m3u8", fetch: true,
			wantMsg: "origin request for %s/demo/240p/seg_000.ts failed: response too large: 216200 bytes, more than limits.segment_size (210000 bytes)"},
		{name: "init section size", limits: Limits{SegmentSize: 115_500}, path: "/l/fmp4.m3u8", fetch: true,
			wantMsg: "origin request for %s/demo/144p/seg_000.ts failed: response too large: 115996 bytes, more than limits.segment_size (115500 bytes)"},
		{name: "key size", path: "/l/key.m3u8", fetch: true,
			wantMsg: "origin request for %s/demo/144p/seg_000.ts failed: response too large: 115996 bytes, more than the 4096 bytes allowed for an AES-128 key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := quick(&Client{Limits: tt.limits})
			before := o.total()
			src, err := c.Resolve(context.Background(), o.URL+tt.path, SelectOptions{})
			if err == nil && tt.fetch {
				before = o.total()
				err = c.Fetch(context.Background(), src.Segments, 1, func(i int, body io.Reader) error {
					if m := src.Segments[i].Map; m != nil {
						if _, err := c.FetchMap(context.Background(), m); err != nil {
							return err
						}
					}
					return nil
				})
			}
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrLimit) {
				t.Fatalf("err = %v, want ErrLimit", err)
			}
			if want := fmt.Sprintf(tt.wantMsg, o.URL); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q\ndoes not contain %q", err, want)
			}
			if strings.Contains(err.Error(), "attempts") {
				t.Errorf("a limit was retried: %v", err)
			}
			if !tt.fetch && strings.Contains(tt.wantMsg, "segments") || strings.Contains(tt.wantMsg, "duration") {
				if n := o.total() - before; n != 1 {
					t.Errorf("%d requests, want only the playlist's", n)
				}
			}
		})
	}
}

// TestHTMLPlaylist: an error page answered with 200 instead of a playlist.
func TestHTMLPlaylist(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	for i, body := range []string{
		"<!DOCTYPE html>\n<html><head><title>Login</title></head></html>",
		"  \n<HTML><BODY>503 Service Unavailable</BODY></HTML>",
		"\xef\xbb\xbf<html>",
	} {
		p := fmt.Sprintf("/h%d.m3u8", i)
		o.fault(p, func(w http.ResponseWriter, _ int) bool {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, body)
			return true
		})
		_, err := quick(&Client{}).Resolve(context.Background(), o.URL+p, SelectOptions{})
		if want := "malformed playlist " + o.URL + p + ": the origin answered an HTML page, not an HLS playlist"; !errors.Is(err, ErrMalformed) || err.Error() != want {
			t.Errorf("err = %v\nwant %s", err, want)
		}
	}
}
