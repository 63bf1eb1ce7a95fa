package streamdownloads_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The fleet tests of issue 14: three Caddy processes sharing one versitygw bucket
// (`store s3 { … }`), one origin that counts and can hold segment requests. The harness is in
// fleetharness_test.go.

// TestFleetStarts: three nodes with the same store s3 block (their own node names) start
// against one bucket and answer the API, and a video nobody created is unknown on all of them.
func TestFleetStarts(t *testing.T) {
	f := startFleet(t, 3, []string{"v"}, "")
	for _, nd := range f.nodes {
		code, env := nd.call("GET", "/acct/stream/v/downloads")
		if code != http.StatusOK || len(env.Result) != 0 {
			t.Errorf("%s: GET of a video never created: %d %+v", nd.name, code, env)
		}
	}
	if n := len(f.origin.Counts()); n != 0 {
		t.Errorf("the origin got requests while nothing was created: %v", f.origin.Counts())
	}
}

// TestFleetPackagedOnce: 30 concurrent POSTs spread over the three nodes (each of 5 videos
// POSTed twice on every node) all answer 200 inprogress; while the origin holds the segments,
// every node answers the same state of each video (status, url, percentComplete, errors);
// once released every video becomes ready, with the same answer (percentComplete 100) on
// all nodes; and the origin served each segment of each video exactly once fleet-wide (and no
// segment of the other rendition).
func TestFleetPackagedOnce(t *testing.T) {
	videos := []string{"v1", "v2", "v3", "v4", "v5"}
	f := startFleet(t, 3, videos, "")
	f.origin.HoldSegmentsAfter(0)

	type answer struct {
		node, video string
		code        int
		body        []byte
		err         error
	}
	answers := make([]answer, 30)
	var wg sync.WaitGroup
	for i := range answers {
		nd, video := f.nodes[i%3], videos[(i/3)%len(videos)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := answer{node: nd.name, video: video}
			req, _ := http.NewRequest("POST", nd.base+"/acct/stream/"+video+"/downloads", nil)
			req.Header.Set("Authorization", "Bearer "+apiToken)
			resp, err := http.DefaultClient.Do(req)
			if a.err = err; err == nil {
				a.code = resp.StatusCode
				a.body, a.err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			answers[i] = a
		}()
	}
	wg.Wait()
	for _, a := range answers {
		var env envelope
		if a.err != nil || a.code != http.StatusOK || json.Unmarshal(a.body, &env) != nil {
			t.Fatalf("POST %s on %s: %d %v %s", a.video, a.node, a.code, a.err, a.body)
		}
		if st := env.Result["default"].Status; st != "inprogress" {
			t.Errorf("POST %s on %s with the origin held: status %s, want inprogress", a.video, a.node, st)
		}
	}

	f.waitHeld()
	for _, v := range videos {
		s := f.sameStateEverywhere(v, true)
		if s.Code != http.StatusOK || s.Entry.Status != "inprogress" || s.Entry.URL != fleetPublicURL+"/"+v+"/downloads/default.mp4" {
			t.Errorf("%s while held: %+v", v, s)
		}
	}

	f.origin.Release()
	for _, v := range videos {
		en := f.waitReadyAll(v, 2*time.Minute)
		if en.URL != fleetPublicURL+"/"+v+"/downloads/default.mp4" {
			t.Errorf("%s ready with url %q", v, en.URL)
		}
		counts, others := f.segmentCounts(v)
		for i, n := range counts {
			if n != 1 {
				t.Errorf("%s: the origin served segment %d %d times fleet-wide, want once", v, i, n)
			}
		}
		if others != 0 {
			t.Errorf("%s: %d requests of segments of another rendition", v, others)
		}
	}
}

// TestFleetDelivery: a download packaged on one node is served by every node (from its local
// copy, or streamed from the bucket by one that never had it) byte-identical with the same
// ETag, whole and by ranges (first bytes, open-ended, suffix, If-Range with the right and a
// wrong ETag), again after the other nodes' caches had time to fill; each range holds the
// whole file's bytes at its place; and a second video of the same source, packaged on
// another node, is the same file with the same ETag.
func TestFleetDelivery(t *testing.T) {
	f := startFleet(t, 3, []string{"a", "b"}, "")
	f.nodes[0].post("a")
	en := f.waitReadyAll("a", 2*time.Minute)
	whole := getFile(t, f.nodes[0].fileURL(en))
	if whole.code != http.StatusOK || whole.etag == "" || whole.accept != "bytes" || len(whole.body) < 1000 {
		t.Fatalf("GET a on the node that packaged it: %d ETag %q Accept-Ranges %q, %d bytes", whole.code, whole.etag, whole.accept, len(whole.body))
	}
	size := len(whole.body)
	requests := []struct {
		name    string
		headers []string
		start   int // of the bytes expected; -1: not a 206
		end     int
	}{
		{"whole", nil, -1, 0},
		{"first bytes", []string{"Range", "bytes=0-99"}, 0, 100},
		{"middle", []string{"Range", "bytes=1000-4999"}, 1000, 5000},
		{"open-ended", []string{"Range", fmt.Sprintf("bytes=%d-", size-3000)}, size - 3000, size},
		{"suffix", []string{"Range", "bytes=-500"}, size - 500, size},
		{"if-range right", []string{"Range", "bytes=10-19", "If-Range", whole.etag}, 10, 20},
		{"if-range wrong", []string{"Range", "bytes=10-19", "If-Range", `"not-the-etag"`}, -1, 0},
	}
	check := func(round string) {
		for _, rq := range requests {
			want := getFile(t, f.nodes[0].fileURL(en), rq.headers...)
			if rq.start < 0 {
				compareFetched(t, round+" "+rq.name+" on node1", want, whole)
			} else if want.code != http.StatusPartialContent || !bytes.Equal(want.body, whole.body[rq.start:rq.end]) ||
				want.rng != fmt.Sprintf("bytes %d-%d/%d", rq.start, rq.end-1, size) {
				t.Errorf("%s %s on node1: %d %q, %d bytes (not the file's bytes %d-%d)", round, rq.name, want.code, want.rng, len(want.body), rq.start, rq.end-1)
			}
			for _, nd := range f.nodes[1:] {
				compareFetched(t, round+" "+rq.name+" on "+nd.name, getFile(t, nd.fileURL(en), rq.headers...), want)
			}
		}
	}
	check("first")
	time.Sleep(fleetStaleness) // the nodes' local caches fill in the background
	check("again")

	f.nodes[1].post("b")
	enB := f.waitReadyAll("b", 2*time.Minute)
	sameEverywhere(t, f.nodes, enB, whole.body, "b (the same source as a)")
}

// TestFleetKilledNodeTakenOver: the node packaging a download (the one POSTed to, which holds
// the only connection to the origin while a segment is held) is SIGKILLed mid-run; another
// node takes the download over after the lease expires and completes it, the survivors agree
// on its state, and the file is byte-identical (same ETag) to an uninterrupted run of the same
// source in the same fleet.
func TestFleetKilledNodeTakenOver(t *testing.T) {
	f := startFleet(t, 3, []string{"ref", "x"}, "")
	f.nodes[1].post("ref")
	ref := getFile(t, f.nodes[1].fileURL(f.waitReadyAll("ref", 2*time.Minute)))
	if ref.code != http.StatusOK {
		t.Fatalf("reference run: %d", ref.code)
	}

	// The node fetching x's held segment is the one to kill: the one POSTed to, unless the
	// fleet hands the run to another.
	before := f.originConns()
	f.origin.HoldSegmentsAfter(1)
	f.nodes[0].post("x")
	t.Logf("held at the origin: %s", f.waitHeld())
	victim := f.nodes[0]
	holders := f.packagingNodes(before)
	var names []string
	for _, h := range holders {
		names = append(names, h.name)
	}
	t.Logf("node fetching from the origin: %v (POSTed to %s)", names, victim.name)
	if len(holders) == 1 {
		victim = holders[0]
	}
	victim.kill()
	killed := time.Now()
	f.origin.Release()

	en := f.waitReadyAll("x", 2*time.Minute)
	t.Logf("%s killed; x ready on the others %v later (lease %v)", victim.name, time.Since(killed).Round(100*time.Millisecond), fleetLease)
	sameEverywhere(t, f.running(), en, ref.body, "x after the takeover (an uninterrupted run's bytes)")
}

// TestFleetDeleteEverywhere: a ready download served by every node (so each may hold a local
// copy) is DELETEd on one node; within the staleness bound every node answers 404 for the file
// and lists no download for the video.
func TestFleetDeleteEverywhere(t *testing.T) {
	f := startFleet(t, 3, []string{"v"}, "")
	f.nodes[0].post("v")
	en := f.waitReadyAll("v", 2*time.Minute)
	for _, nd := range f.nodes {
		if got := getFile(t, nd.fileURL(en)); got.code != http.StatusOK {
			t.Fatalf("%s: GET before the delete: %d", nd.name, got.code)
		}
	}
	time.Sleep(fleetStaleness) // let the local caches fill

	code, env := f.nodes[1].call("DELETE", "/acct/stream/v/downloads")
	if code != http.StatusOK {
		t.Fatalf("DELETE on %s: %d %+v", f.nodes[1].name, code, env.Errors)
	}
	deleted := time.Now()
	// A request sent before the bound may still be answered from a node's cache; one sent
	// after it (plus a margin for the request itself) must not.
	bound := fleetStaleness + 500*time.Millisecond
	for _, nd := range f.nodes {
		for {
			sent := time.Now()
			got := getFile(t, nd.fileURL(en))
			_, env := nd.call("GET", "/acct/stream/v/downloads")
			if got.code == http.StatusNotFound && len(env.Result) == 0 {
				t.Logf("%s: 404 %v after the DELETE", nd.name, time.Since(deleted).Round(10*time.Millisecond))
				break
			}
			if sent.Sub(deleted) > bound {
				t.Fatalf("%s: file %d, downloads %+v %v after the DELETE on %s (bound %v)",
					nd.name, got.code, env.Result, sent.Sub(deleted), f.nodes[1].name, fleetStaleness)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestFleetBucketOutage: the bucket is stopped while a download is in progress (its segments
// held at the origin): every node's API answers 503 with a Retry-After in seconds and an error
// message saying why, to a status GET and to a POST of a new video; a ready download keeps being served, byte-identical, by the node that
// has its local copy; once the bucket is back the download completes, the same file as the
// ready one (same source), on every node.
func TestFleetBucketOutage(t *testing.T) {
	f := startFleet(t, 3, []string{"r", "x", "y"}, "")
	f.nodes[0].post("r")
	enR := f.waitReadyAll("r", 2*time.Minute)
	ready := getFile(t, f.nodes[0].fileURL(enR))
	if ready.code != http.StatusOK {
		t.Fatalf("GET r: %d", ready.code)
	}

	f.origin.HoldSegmentsAfter(1)
	f.nodes[1].post("x")
	f.waitHeld()
	f.s3.Stop()
	stopped := time.Now()

	// Each node, polled until it notices (cached state may answer until then): 503, Retry-After,
	// a reason. How long each API request took is logged (issue 14: a slow bucket must not
	// stall the API).
	check503 := func(nd *fleetNode, method, video string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			sent := time.Now()
			resp, body := nd.send(method, "/acct/stream/"+video+"/downloads", apiToken)
			took := time.Since(sent)
			if resp.StatusCode == http.StatusServiceUnavailable {
				var env envelope
				if retry, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || retry <= 0 {
					t.Errorf("%s %s %s: 503 with Retry-After %q", nd.name, method, video, resp.Header.Get("Retry-After"))
				}
				if json.Unmarshal(body, &env) != nil || env.Success || len(env.Errors) == 0 || strings.TrimSpace(env.Errors[0].Message) == "" {
					t.Errorf("%s %s %s: 503 without a reason: %s", nd.name, method, video, body)
				}
				t.Logf("%s %s %s: 503 %v after the stop (this request took %v), Retry-After %s: %s", nd.name, method, video,
					time.Since(stopped).Round(10*time.Millisecond), took.Round(10*time.Millisecond), resp.Header.Get("Retry-After"), bytes.TrimSpace(body))
				return
			}
			if resp.StatusCode != http.StatusOK || time.Now().After(deadline) {
				t.Fatalf("%s %s %s with the bucket down: %d %s, want 503 within 15 s", nd.name, method, video, resp.StatusCode, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, nd := range f.nodes {
		check503(nd, "GET", "x")
	}
	check503(f.nodes[2], "POST", "y") // a new download cannot be recorded
	if got := getFile(t, f.nodes[0].fileURL(enR)); got.code != http.StatusOK || got.etag != ready.etag || !bytes.Equal(got.body, ready.body) {
		t.Errorf("ready local copy with the bucket down: %d ETag %s, %d bytes; want 200 ETag %s, %d bytes",
			got.code, got.etag, len(got.body), ready.etag, len(ready.body))
	}
	rng := getFile(t, f.nodes[0].fileURL(enR), "Range", "bytes=100-199")
	if rng.code != http.StatusPartialContent || !bytes.Equal(rng.body, ready.body[100:200]) {
		t.Errorf("range of the ready local copy with the bucket down: %d, %d bytes", rng.code, len(rng.body))
	}

	f.origin.Release()
	time.Sleep(fleetLease) // the holder's lease runs out while the bucket is away
	f.s3.Start()
	back := time.Now()
	en := f.waitReadyAll("x", 2*time.Minute)
	t.Logf("x ready on every node %v after the bucket came back", time.Since(back).Round(100*time.Millisecond))
	sameEverywhere(t, f.nodes, en, ready.body, "x after the outage (r's bytes)")
}
