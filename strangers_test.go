package streamdownloads_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// getFrom GETs a file as the client address from (through X-Forwarded-For, which the
// edge trusts from 127.0.0.1 in these tests) and returns the status, the Retry-After
// and the body's first line.
func (e *edge) getFrom(from, video string) (int, string, string) {
	e.t.Helper()
	req, err := http.NewRequest("GET", e.base+"/"+video+"/downloads/default.mp4", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if from != "" {
		req.Header.Set("X-Forwarded-For", from)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var line string
	if resp.StatusCode != 200 {
		b := make([]byte, 512)
		n, _ := resp.Body.Read(b)
		line = firstLine(string(b[:n]))
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), line
}

// storageEntries lists storage_dir, without its .tmp.
func (e *edge) storageEntries() []string {
	e.t.Helper()
	entries, err := os.ReadDir(e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, en := range entries {
		if en.Name() != ".tmp" {
			names = append(names, en.Name())
		}
	}
	return names
}

// TestOnDemandStrangers: on-demand GETs of ids the origin refuses (403 as S3 answers
// for a missing key, an HTML soft-404, 5xx, 404) leave nothing on disk and no download
// in the API; the failure answers the GETs that follow without asking the origin again.
// A run that fails after its media came keeps its error record, and a POST still
// creates a download of a refused id (recorded, as the API's are).
func TestOnDemandStrangers(t *testing.T) {
	html := []byte("<!doctype html><html><body><h1>Page not found</h1></body></html>\n")
	o := testutil.NewFaultOrigin(t, demoCopies(t, "midway"))
	o.Always("/forbidden/master.m3u8", testutil.Fault{Kind: testutil.Status, Status: 403})
	o.Always("/soft404/master.m3u8", testutil.Fault{Kind: testutil.Body, Body: html, ContentType: "text/html"})
	o.Always("/broken/master.m3u8", testutil.Fault{Kind: testutil.Status, Status: 503})
	o.Always("/midway/240p/seg_001.ts", testutil.Fault{Kind: testutil.Status, Status: 404})
	e := startEdge(t, o.URL+"/{video_id}/master.m3u8", "\t\ton_demand 30s\n\t\ton_demand_client_rate 1000\n\t\ton_demand_rate 1000\n")

	cases := []struct {
		video string
		code  int
	}{
		{"forbidden", 502}, {"soft404", 502}, {"broken", 502},
		{"rand0", 404}, {"rand1", 404}, {"rand2", 404},
		{"midway", 404}, // packaging failed, after its first segment
	}
	for _, c := range cases {
		code, _, line := e.getFrom("", c.video)
		t.Logf("GET %s: %d %s", c.video, code, line)
		if code != c.code {
			t.Errorf("GET %s: %d %q, want %d", c.video, code, line, c.code)
		}
	}
	if got := e.storageEntries(); !slices.Equal(got, []string{"midway"}) {
		t.Errorf("storage_dir holds %v, want only midway's", got)
	}
	for _, c := range cases {
		want := "none"
		if c.video == "midway" {
			want = "error/origin_error"
		}
		if got := e.status(c.video); got != want {
			t.Errorf("%s in the API: %s, want %s", c.video, got, want)
		}
	}
	// Asked again: answered from the recent failure, the origin is not asked.
	before := o.Counts()
	for _, c := range cases {
		if code, _, line := e.getFrom("", c.video); code != c.code {
			t.Errorf("GET %s again: %d %q, want %d", c.video, code, line, c.code)
		}
	}
	if after := o.Counts(); !maps(before, after) {
		t.Errorf("the origin was asked again: %v, then %v", before, after)
	}
	// The API asks again, and records what it gets.
	if code, env := e.call("POST", "/a/stream/forbidden/downloads"); code != 200 {
		t.Fatalf("POST forbidden: %d %+v", code, env.Errors)
	}
	en := e.waitReady("forbidden", "default")
	if en.Status != "error" || en.ErrorReasonCode != "origin_error" || !strings.Contains(en.ErrorReasonText, "403") {
		t.Errorf("POST of a refused id: %+v", en)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "forbidden", "default.json")); err != nil {
		t.Errorf("the API's download has no record: %v", err)
	}
}

func maps(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestOnDemandRates: on-demand creations are limited per client address (an IPv6 /64)
// and in all: beyond, a GET answers 429 with Retry-After and reaches no origin; a GET
// of a file that is there, or of a recent failure, does not count and is not refused.
func TestOnDemandRates(t *testing.T) {
	o := testutil.NewFaultOrigin(t, demoCopies(t, "real"))
	e := startEdgeWith(t, o.URL+"/{video_id}/master.m3u8", "\t\ton_demand 10s\n\t\ton_demand_client_rate 2\n\t\ton_demand_rate 4\n",
		"servers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}")
	e.packageReady("real")
	const a, b = "203.0.113.1", "2001:db8:1:2::5"
	steps := []struct {
		from, video string
		code        int
	}{
		{a, "r1", 404}, {a, "r2", 404}, // a's two
		{a, "r3", 429},                 // a's third
		{a, "real", 200},               // a file that is there: no creation
		{a, "r1", 404},                 // a recent failure: no creation
		{b, "r4", 404},                 // b's first
		{"2001:db8:1:2::6", "r5", 404}, // b's second: an address of b's /64
		{"2001:db8:1:2::7", "r6", 429}, // b's /64 has had its two
		{"198.51.100.7", "r7", 429},    // the fifth in all
	}
	for _, s := range steps {
		code, retry, line := e.getFrom(s.from, s.video)
		t.Logf("GET %s from %s: %d (Retry-After %q) %s", s.video, s.from, code, retry, line)
		if code != s.code {
			t.Errorf("GET %s from %s: %d %q, want %d", s.video, s.from, code, line, s.code)
		}
		if code == 429 {
			if n, err := strconv.Atoi(retry); err != nil || n < 1 || n > 60 {
				t.Errorf("GET %s from %s: Retry-After %q", s.video, s.from, retry)
			}
			if n := o.Count("/" + s.video + "/master.m3u8"); n != 0 {
				t.Errorf("a refused creation reached the origin %d times", n)
			}
		}
	}
}

// TestThrashLogged: with max_storage holding one file, GETs that alternate between two
// videos package each again every time; the log says so (max_storage thrash), with a
// count.
func TestThrashLogged(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	o := testutil.NewOrigin(t, demoCopies(t, "x", "y"))
	e := startEdgeWith(t, o.URL+"/{video_id}/master.m3u8", fmt.Sprintf("\t\ton_demand 30s\n\t\tmax_storage %dKiB\n", demoSize>>10),
		"log thrash {\n\t\toutput file "+logFile+"\n\t\tinclude http.handlers.stream_downloads\n\t\tlevel WARN\n\t\tformat json\n\t}")
	for _, v := range []string{"x", "y", "x", "y"} {
		if code, _, line := e.getFrom("", v); code != 200 {
			t.Fatalf("GET %s: %d %s", v, code, line)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(logFile)
		n := strings.Count(string(b), "max_storage thrash")
		if n == 2 && strings.Contains(string(b), `"thrash_count":2`) && strings.Contains(string(b), `"evicted_ago"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d thrash warnings in the log, want 2:\n%s", n, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
