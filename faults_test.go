package streamdownloads_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// faultCase is one video of the fault matrix: rules for its paths (relative to
// /{video}/), and what the run must end in.
type faultCase struct {
	name  string
	rules []testutil.Rule // patterns relative to /{name}/
	// ready: the file must be the clean one, byte for byte; else an error whose code
	// is code and whose text holds each of text ({origin}, {video}, {foreign} replaced).
	ready bool
	code  string
	text  []string
	// counts: requests expected per path (relative to /{name}/).
	counts map[string]int
}

func rule(pattern string, from, to int, f testutil.Fault) testutil.Rule {
	return testutil.Rule{Pattern: pattern, From: from, To: to, Fault: f}
}

func status(code int) testutil.Fault { return testutil.Fault{Kind: testutil.Status, Status: code} }

// TestOriginFaults runs every fault of the matrix through one Caddy at once, each on its
// own copy of the demo video: transient faults end ready with the same bytes as a
// clean run, permanent ones end in error naming the URL (credentials and query
// stripped) and status, with no file served and no temp file left.
func TestOriginFaults(t *testing.T) {
	foreign := testutil.NewFaultOrigin(t, testutil.DemoOrigin(t))
	garbage := testutil.Garbage(209056, 1)
	html := []byte("<html><body><h1>502 Bad Gateway</h1></body></html>\n")
	cases := []faultCase{
		{name: "clean", ready: true, counts: map[string]int{"master.m3u8": 1, "240p/index.m3u8": 1, "240p/seg_000.ts": 1, "240p/seg_001.ts": 1, "240p/seg_002.ts": 1}},
		// Transient: retried, then ready.
		{name: "s503twice", ready: true, rules: []testutil.Rule{rule("240p/seg_001.ts", 1, 2, status(503))},
			counts: map[string]int{"240p/seg_000.ts": 1, "240p/seg_001.ts": 3, "240p/seg_002.ts": 1}},
		{name: "s502once", ready: true, rules: []testutil.Rule{rule("240p/seg_000.ts", 1, 1, status(502))},
			counts: map[string]int{"240p/seg_000.ts": 2}},
		{name: "s500once", ready: true, rules: []testutil.Rule{rule("240p/seg_002.ts", 1, 1, status(500))},
			counts: map[string]int{"240p/seg_002.ts": 2}},
		{name: "s429", ready: true, rules: []testutil.Rule{rule("240p/seg_001.ts", 1, 1, testutil.Fault{Kind: testutil.Status, Status: 429, RetryAfter: "1"})},
			counts: map[string]int{"240p/seg_001.ts": 2}},
		{name: "reset", ready: true, rules: []testutil.Rule{rule("240p/seg_001.ts", 1, 1, testutil.Fault{Kind: testutil.Reset})},
			counts: map[string]int{"240p/seg_001.ts": 2}},
		{name: "truncated", ready: true, rules: []testutil.Rule{rule("240p/seg_001.ts", 1, 1, testutil.Fault{Kind: testutil.Truncate})},
			counts: map[string]int{"240p/seg_001.ts": 2}},
		{name: "delayed", ready: true, rules: []testutil.Rule{rule("240p/*.ts", 1, 1, testutil.Fault{Kind: testutil.Delay, Delay: 300 * time.Millisecond})},
			counts: map[string]int{"240p/seg_000.ts": 1, "240p/seg_001.ts": 1, "240p/seg_002.ts": 1}},
		{name: "playlist503", ready: true, rules: []testutil.Rule{rule("240p/index.m3u8", 1, 1, status(503))},
			counts: map[string]int{"240p/index.m3u8": 2}},
		{name: "master429", ready: true, rules: []testutil.Rule{rule("master.m3u8", 1, 1, testutil.Fault{Kind: testutil.Status, Status: 429, RetryAfter: "1"})},
			counts: map[string]int{"master.m3u8": 2}},
		{name: "redirect", ready: true, rules: []testutil.Rule{rule("240p/seg_001.ts", 1, 1, testutil.Fault{Kind: testutil.Redirect, Location: "seg_001.ts?moved=1"})},
			counts: map[string]int{"240p/seg_001.ts": 2}},
		{name: "octetplaylist", ready: true, rules: []testutil.Rule{rule("*/index.m3u8", 1, 0, testutil.Fault{Kind: testutil.ContentType, ContentType: "application/octet-stream"})}},
		{name: "texttype", ready: true, rules: []testutil.Rule{rule("240p/*.ts", 1, 0, testutil.Fault{Kind: testutil.ContentType, ContentType: "text/plain"})},
			counts: map[string]int{"240p/seg_000.ts": 1, "240p/seg_001.ts": 1, "240p/seg_002.ts": 1}},
		// Permanent: error.
		{name: "p404", code: "origin_error", rules: []testutil.Rule{rule("240p/seg_001.ts", 1, 0, status(404))},
			text:   []string{"origin answered 404 Not Found for {origin}/{video}/240p/seg_001.ts"},
			counts: map[string]int{"240p/seg_001.ts": 1}},
		{name: "p500", code: "origin_error", rules: []testutil.Rule{rule("240p/seg_001.ts", 1, 0, status(500))},
			text:   []string{"origin answered 500 Internal Server Error for {origin}/{video}/240p/seg_001.ts (after 5 attempts)"},
			counts: map[string]int{"240p/seg_001.ts": 5}},
		{name: "p403playlist", code: "origin_error", rules: []testutil.Rule{rule("240p/index.m3u8", 1, 0, status(403))},
			text:   []string{"origin answered 403 Forbidden for {origin}/{video}/240p/index.m3u8"},
			counts: map[string]int{"240p/index.m3u8": 1, "240p/seg_000.ts": 0}},
		{name: "garbage", code: "malformed_segment", rules: []testutil.Rule{rule("240p/seg_001.ts", 1, 0, testutil.Fault{Kind: testutil.Body, Body: garbage})},
			text:   []string{"segment {origin}/{video}/240p/seg_001.ts: "},
			counts: map[string]int{"240p/seg_001.ts": 1}},
		{name: "htmlsegment", code: "malformed_segment", rules: []testutil.Rule{rule("240p/seg_001.ts", 1, 0, testutil.Fault{Kind: testutil.Body, Body: html, ContentType: "text/html"})},
			text: []string{"segment {origin}/{video}/240p/seg_001.ts: "}},
		{name: "htmlplaylist", code: "malformed_playlist", rules: []testutil.Rule{rule("240p/index.m3u8", 1, 0, testutil.Fault{Kind: testutil.Body, Body: html, ContentType: "text/html"})},
			text: []string{"malformed playlist {origin}/{video}/240p/index.m3u8: the origin answered an HTML page, not an HLS playlist"}},
		{name: "foreignredirect", code: "forbidden_host", rules: []testutil.Rule{rule("240p/seg_001.ts", 1, 0, testutil.Fault{Kind: testutil.Redirect, Location: foreign.URL + "/demo/240p/seg_001.ts?sig=secret"})},
			text:   []string{"origin request for {origin}/{video}/240p/seg_001.ts failed: host not allowed: the origin answered 302 redirecting to {foreign}/demo/240p/seg_001.ts, which is neither the origin's host"},
			counts: map[string]int{"240p/seg_001.ts": 1}},
		{name: "redirectloop", code: "origin_error", rules: []testutil.Rule{rule("240p/seg_001.ts", 1, 0, testutil.Fault{Kind: testutil.Redirect, Location: "seg_001.ts?again"})},
			text:   []string{"origin request for {origin}/{video}/240p/seg_001.ts failed: more than 5 redirects"},
			counts: map[string]int{"240p/seg_001.ts": 6}},
		{name: "metadatahost", code: "forbidden_host", rules: []testutil.Rule{rule("240p/index.m3u8", 1, 0, testutil.Fault{Kind: testutil.Body,
			Body: []byte("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nseg_000.ts\n#EXTINF:4,\nhttp://169.254.169.254/latest/meta-data/\n#EXT-X-ENDLIST\n")})},
			text:   []string{"host not allowed: segment 2 of playlist {origin}/{video}/240p/index.m3u8 is at http://169.254.169.254/latest/meta-data/, which is neither the origin's host"},
			counts: map[string]int{"240p/seg_000.ts": 0}},
		{name: "foreignhost", code: "forbidden_host", rules: []testutil.Rule{rule("240p/index.m3u8", 1, 0, testutil.Fault{Kind: testutil.Body,
			Body: []byte("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\n" + foreign.URL + "/demo/240p/seg_000.ts\n#EXT-X-ENDLIST\n")})},
			text: []string{"segment 1 of playlist {origin}/{video}/240p/index.m3u8 is at {foreign}/demo/240p/seg_000.ts"}},
		{name: "fileuri", code: "forbidden_host", rules: []testutil.Rule{rule("240p/index.m3u8", 1, 0, testutil.Fault{Kind: testutil.Body,
			Body: []byte("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")})},
			text: []string{"segment 1 of playlist {origin}/{video}/240p/index.m3u8 is file:///etc/passwd; only http and https URLs are fetched"}},
	}

	names := make([]string, len(cases))
	for i, c := range cases {
		names[i] = c.name
	}
	origin := testutil.NewFaultOrigin(t, demoCopies(t, names...))
	for _, c := range cases {
		for _, r := range c.rules {
			r.Pattern = "/" + c.name + "/" + r.Pattern
			origin.Add(r)
		}
	}
	// Credentials and a query in the origin URL must not reach the error texts.
	tmpl := strings.Replace(origin.URL, "http://", "http://user:pw@", 1) + "/{video_id}/master.m3u8?token=secret"
	e := startEdge(t, tmpl, "\t\tmax_jobs 32\n")

	start := time.Now()
	for _, c := range cases {
		if code, env := e.call("POST", "/a/stream/"+c.name+"/downloads"); code != http.StatusOK {
			t.Fatalf("POST %s: %d %+v", c.name, code, env.Errors)
		}
	}
	results := map[string]entry{}
	for _, c := range cases {
		results[c.name] = e.waitReady(c.name, "default")
	}
	t.Logf("%d cases done in %v", len(cases), time.Since(start).Round(time.Millisecond))

	clean, _ := e.download(e.base + "/clean/downloads/default.mp4")
	want, err := os.ReadFile(clean)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(testutil.CompareWithSource(t, clean, filepath.Join(testutil.DemoOrigin(t), "demo", "240p", "index.m3u8")))

	replace := strings.NewReplacer("{origin}", origin.URL, "{foreign}", foreign.URL)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			en := results[c.name]
			t.Logf("%s: %s %s", en.Status, en.ErrorReasonCode, en.ErrorReasonText)
			if c.ready {
				if en.Status != "ready" {
					t.Fatalf("ended %s: %s %s", en.Status, en.ErrorReasonCode, en.ErrorReasonText)
				}
				path, resp := e.download(en.URL)
				got, _ := os.ReadFile(path)
				if resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
					t.Errorf("GET: %d, %d bytes; want the clean run's %d bytes", resp.StatusCode, len(got), len(want))
				}
			} else {
				var texts []string
				for _, text := range c.text {
					texts = append(texts, strings.ReplaceAll(replace.Replace(text), "{video}", c.name))
				}
				checkFailed(t, e, c.name, en, c.code, texts)
			}
			for p, n := range c.counts {
				if got := origin.Count("/" + c.name + "/" + p); got != n {
					t.Errorf("%s requested %d times, want %d", p, got, n)
				}
			}
		})
	}
	if n := len(foreign.Counts()); n != 0 {
		t.Errorf("the foreign host got requests: %v", foreign.Counts())
	}
	if tmp, _ := os.ReadDir(filepath.Join(e.dir, ".tmp")); len(tmp) != 0 {
		t.Errorf("%d temp files left", len(tmp))
	}

	// A playlist that changes between requests: the first run sees a broken one
	// (a segment the origin does not have) and fails; a POST again resolves anew and
	// packages the mended playlist.
	t.Run("changing playlist", func(t *testing.T) {
		o := testutil.NewFaultOrigin(t, demoCopies(t, "v"))
		playlist, err := os.ReadFile(filepath.Join(o.Dir, "v", "240p", "index.m3u8"))
		if err != nil {
			t.Fatal(err)
		}
		o.Once("/v/240p/index.m3u8", testutil.Fault{Kind: testutil.Body, ContentType: "application/vnd.apple.mpegurl",
			Body: bytes.Replace(playlist, []byte("seg_001.ts"), []byte("seg_001_old.ts"), 1)})
		e := startEdge(t, o.URL+"/{video_id}/master.m3u8", "")
		if code, _ := e.call("POST", "/a/stream/v/downloads"); code != http.StatusOK {
			t.Fatalf("POST: %d", code)
		}
		en := e.waitReady("v", "default")
		checkFailed(t, e, "v", en, "origin_error", []string{"origin answered 404 Not Found for " + o.URL + "/v/240p/seg_001_old.ts"})
		if code, _ := e.call("POST", "/a/stream/v/downloads"); code != http.StatusOK {
			t.Fatalf("POST again: %d", code)
		}
		if en := e.waitReady("v", "default"); en.Status != "ready" {
			t.Fatalf("after the playlist changed: %s %s", en.Status, en.ErrorReasonText)
		}
		path, _ := e.download(e.base + "/v/downloads/default.mp4")
		if got, _ := os.ReadFile(path); !bytes.Equal(got, want) {
			t.Errorf("the re-packaged file differs from the clean one")
		}
		if n := o.Count("/v/240p/index.m3u8"); n != 2 {
			t.Errorf("the variant playlist was requested %d times, want 2", n)
		}
	})
}

// checkFailed checks that a download ended in error with code and a text holding each
// of texts, free of credentials and query strings, and that no file is served.
func checkFailed(t *testing.T, e *edge, video string, en entry, code string, texts []string) {
	t.Helper()
	if en.Status != "error" {
		t.Fatalf("ended %s, want error", en.Status)
	}
	if en.ErrorReasonCode != code {
		t.Errorf("errorReasonCode %q, want %q (text %q)", en.ErrorReasonCode, code, en.ErrorReasonText)
	}
	for _, want := range texts {
		if !strings.Contains(en.ErrorReasonText, want) {
			t.Errorf("errorReasonText %q\ndoes not contain %q", en.ErrorReasonText, want)
		}
	}
	if txt := en.ErrorReasonText; strings.Contains(txt, "pw@") || strings.Contains(txt, "secret") || strings.Contains(txt, "token=") || strings.Contains(txt, "\n") {
		t.Errorf("errorReasonText %q leaks credentials or a query, or spans lines", txt)
	}
	resp, err := http.Get(e.base + "/" + video + "/downloads/default.mp4")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusPartialContent {
		t.Errorf("GET of a failed download: %d", resp.StatusCode)
	}
	if files, _ := filepath.Glob(filepath.Join(e.dir, video, "*.mp4")); len(files) != 0 {
		t.Errorf("files left for a failed download: %v", files)
	}
}

// TestOriginLimits: each limit, exceeded, ends the run in error naming the limit and
// its option; counts and duration are refused before any segment is fetched.
func TestOriginLimits(t *testing.T) {
	cases := []struct {
		name, limits string
		text         string
		segments     int // segment requests expected
	}{
		{"segments", "segments 2", "limit exceeded: the playlist {origin}/v/240p/index.m3u8 has 3 segments, more than limits.segments (2)", 0},
		{"duration", "duration 10s", "limit exceeded: the playlist {origin}/v/240p/index.m3u8 lasts 12s, more than limits.duration (10s)", 0},
		{"playlist size", "playlist_size 200B", "origin request for {origin}/v/master.m3u8 failed: response too large: 227 bytes, more than limits.playlist_size (200 bytes)", 0},
		{"segment size", "segment_size 210000B", "origin request for {origin}/v/240p/seg_000.ts failed: response too large: 216200 bytes, more than limits.segment_size (210000 bytes)", -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := testutil.NewFaultOrigin(t, demoCopies(t, "v"))
			e := startEdge(t, o.URL+"/{video_id}/master.m3u8", "\t\tlimits {\n\t\t\t"+c.limits+"\n\t\t}\n")
			if code, env := e.call("POST", "/a/stream/v/downloads"); code != http.StatusOK {
				t.Fatalf("POST: %d %+v", code, env.Errors)
			}
			en := e.waitReady("v", "default")
			t.Logf("%s: %s %s", en.Status, en.ErrorReasonCode, en.ErrorReasonText)
			checkFailed(t, e, "v", en, "limit_exceeded", []string{strings.ReplaceAll(c.text, "{origin}", o.URL)})
			segs := 0
			for p, n := range o.Counts() {
				if strings.HasSuffix(p, ".ts") {
					segs += n
				}
			}
			if c.segments >= 0 && segs != c.segments {
				t.Errorf("%d segment requests, want %d", segs, c.segments)
			}
			if tmp, _ := os.ReadDir(filepath.Join(e.dir, ".tmp")); len(tmp) != 0 {
				t.Errorf("%d temp files left", len(tmp))
			}
		})
	}
}

// TestAllowedHosts: a playlist pointing at another host is refused unless allowed_hosts
// names it ("localhost" is another host than the origin's 127.0.0.1 for the policy; an
// entry without a port matches the origin's port).
func TestAllowedHosts(t *testing.T) {
	o := testutil.NewFaultOrigin(t, demoCopies(t, "v"))
	port := o.URL[strings.LastIndex(o.URL, ":")+1:]
	body := "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n"
	for i := range 3 {
		body += fmt.Sprintf("#EXTINF:4.000000,\nhttp://LocalHost:%s/v/240p/seg_%03d.ts\n", port, i)
	}
	o.Always("/v/240p/index.m3u8", testutil.Fault{Kind: testutil.Body, Body: []byte(body + "#EXT-X-ENDLIST\n")})

	e := startEdge(t, o.URL+"/{video_id}/master.m3u8", "")
	if code, _ := e.call("POST", "/a/stream/v/downloads"); code != http.StatusOK {
		t.Fatalf("POST: %d", code)
	}
	checkFailed(t, e, "v", e.waitReady("v", "default"), "forbidden_host",
		[]string{"host not allowed: segment 1 of playlist " + o.URL + "/v/240p/index.m3u8 is at http://LocalHost:" + port + "/v/240p/seg_000.ts"})
	if n := o.Count("/v/240p/seg_000.ts"); n != 0 {
		t.Errorf("the refused segment was requested %d times", n)
	}

	e = startEdge(t, o.URL+"/{video_id}/master.m3u8", "\t\tallowed_hosts example.com *.example.net localhost\n")
	if code, _ := e.call("POST", "/a/stream/v/downloads"); code != http.StatusOK {
		t.Fatalf("POST: %d", code)
	}
	en := e.waitReady("v", "default")
	if en.Status != "ready" {
		t.Fatalf("with allowed_hosts: %s %s", en.Status, en.ErrorReasonText)
	}
	path, _ := e.download(en.URL)
	t.Log(testutil.CompareWithSource(t, path, filepath.Join(testutil.DemoOrigin(t), "demo", "240p", "index.m3u8")))
}
