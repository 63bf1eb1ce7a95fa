package streamdownloads_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// TestCreateWait: a POST waits for the origin's playlists at most create_wait. Within
// it, a video the origin lacks answers 404 and a live one 409, as always; past it the
// POST answers inprogress (the API shows the download as such while the playlists are
// read), and the download then ends as the origin decides: ready, or error with
// errorReasonCode not_found, live, or origin_error naming the URL and the status.
func TestCreateWait(t *testing.T) {
	const wait = 2 * time.Second
	const slow = 5 * time.Second // the origin's answer, past create_wait
	live := []byte("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nseg0.ts\n")
	src := demoCopies(t, "slow", "throttled", "always429")
	for _, v := range []string{"slowlive", "live"} {
		if err := os.MkdirAll(filepath.Join(src, v), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, v, "master.m3u8"), live, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o := testutil.NewFaultOrigin(t, src)
	delay := testutil.Fault{Kind: testutil.Delay, Delay: slow}
	o.Once("/slow/master.m3u8", delay)
	o.Once("/slowmissing/master.m3u8", delay) // then 404: there is no such folder
	o.Once("/slowlive/master.m3u8", delay)
	// A Retry-After longer than create_wait: the first POST must not wait it out.
	o.Once("/throttled/master.m3u8", testutil.Fault{Kind: testutil.Status, Status: 429, RetryAfter: "4"})
	o.Always("/always429/master.m3u8", testutil.Fault{Kind: testutil.Status, Status: 429, RetryAfter: "1"})
	e := startEdge(t, o.URL+"/{video_id}/master.m3u8", "\t\tcreate_wait 2s\n\t\tmax_jobs 8\n")

	// Known within create_wait: answered as always, and nothing is created.
	for v, want := range map[string]int{"missing": 404, "live": 409} {
		start := time.Now()
		code, env := e.call("POST", "/a/stream/"+v+"/downloads")
		if code != want {
			t.Errorf("POST %s: %d %+v, want %d", v, code, env.Errors, want)
		}
		if took := time.Since(start); took > wait {
			t.Errorf("POST %s took %v", v, took)
		}
		if got := e.status(v); got != "none" {
			t.Errorf("%s after its POST: %s", v, got)
		}
	}

	slowOnes := []string{"slow", "slowmissing", "slowlive", "throttled", "always429"}
	var wg sync.WaitGroup
	for _, v := range slowOnes {
		wg.Go(func() {
			start := time.Now()
			code, env := e.call("POST", "/a/stream/"+v+"/downloads")
			took := time.Since(start)
			t.Logf("POST %s: %d after %v", v, code, took.Round(time.Millisecond))
			if code != 200 || env.Result["default"].Status != "inprogress" {
				t.Errorf("POST %s: %d %+v, want 200 inprogress", v, code, env)
			}
			if took > wait+time.Second {
				t.Errorf("POST %s took %v: create_wait is %v", v, took, wait)
			}
		})
	}
	wg.Wait()
	// Still being resolved: the API lists them in progress (not {}), and a POST again
	// answers the same at once.
	for _, v := range []string{"slow", "slowmissing", "slowlive"} {
		if got := e.status(v); got != "inprogress" {
			t.Errorf("%s while its playlist is read: %s", v, got)
		}
		start := time.Now()
		if code, env := e.call("POST", "/a/stream/"+v+"/downloads"); code != 200 || env.Result["default"].Status != "inprogress" || time.Since(start) > time.Second {
			t.Errorf("POST %s again: %d %+v after %v", v, code, env, time.Since(start))
		}
	}

	for _, v := range []string{"slow", "throttled"} {
		if en := e.waitReady(v, "default"); en.Status != "ready" {
			t.Errorf("%s: %s %s %s", v, en.Status, en.ErrorReasonCode, en.ErrorReasonText)
		}
	}
	for v, want := range map[string][2]string{
		"slowmissing": {"not_found", "origin answered 404 Not Found for " + o.URL + "/slowmissing/master.m3u8"},
		"slowlive":    {"live", "no EXT-X-ENDLIST"},
		"always429":   {"origin_error", "origin answered 429 Too Many Requests for " + o.URL + "/always429/master.m3u8 (after 5 attempts)"},
	} {
		en := e.waitReady(v, "default")
		if en.Status != "error" || en.ErrorReasonCode != want[0] || !strings.Contains(en.ErrorReasonText, want[1]) {
			t.Errorf("%s ended %s %q %q; want error %s with %q", v, en.Status, en.ErrorReasonCode, en.ErrorReasonText, want[0], want[1])
		}
	}
	if n := o.Count("/throttled/master.m3u8"); n != 2 {
		t.Errorf("throttled: master requested %d times, want 2", n)
	}
	// A download that ended in error for a live playlist is created again by a POST,
	// and refused at once now that the origin answers fast.
	if code, _ := e.call("POST", "/a/stream/slowlive/downloads"); code != http.StatusConflict {
		t.Errorf("POST slowlive again: %d, want 409", code)
	}
	if got := e.status("slowlive"); got != "error/live" {
		t.Errorf("slowlive after a refused POST: %s, want its error record kept", got)
	}
}

// TestOnDemandSlowPlaylist: an on-demand GET answers 503 with Retry-After within its
// wait (on_demand 2s) when the origin takes longer to answer the playlist, which goes
// on being read in the background; the API lists the download in progress meanwhile,
// and a later GET gets the file.
func TestOnDemandSlowPlaylist(t *testing.T) {
	o := testutil.NewFaultOrigin(t, demoCopies(t, "v"))
	o.Once("/v/master.m3u8", testutil.Fault{Kind: testutil.Delay, Delay: 6 * time.Second})
	e := startEdge(t, o.URL+"/{video_id}/master.m3u8", "\t\ton_demand 2s\n")

	start := time.Now()
	resp, err := http.Get(e.base + "/v/downloads/default.mp4")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	took := time.Since(start)
	t.Logf("on-demand GET: %d after %v", resp.StatusCode, took.Round(time.Millisecond))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("on-demand GET of a slow playlist: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if took > 3500*time.Millisecond {
		t.Errorf("on-demand GET answered after %v; on_demand is 2s", took)
	}
	if got := e.status("v"); got != "inprogress" {
		t.Errorf("while the playlist is read: %s, want inprogress", got)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		code, msg := e.fileStatus("v")
		if code == 200 {
			break
		}
		if code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("GET: %d %q", code, msg)
		}
	}
	if n := o.Count("/v/master.m3u8"); n != 1 {
		t.Errorf("master requested %d times, want 1", n)
	}
}
