package streamdownloads_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// TestFlood sends hundreds of concurrent POSTs, status GETs and range downloads over
// twelve videos with max_jobs 2: each video is packaged once, never more than two at a
// time, no request fails, every range is the right bytes, and status answers stay fast
// while the jobs run.
func TestFlood(t *testing.T) {
	const (
		nVideos  = 12
		nPosts   = 300
		nStatus  = 300
		nRanges  = 200
		workers  = 64
		maxJobs  = 2
		p99Limit = 2 * time.Second // generous: 2 busy cores; the measured value is logged
	)
	videos := make([]string, nVideos)
	for i := range videos {
		videos[i] = fmt.Sprintf("v%02d", i)
	}
	origin := testutil.NewOrigin(t, demoCopies(t, videos...))
	// Segments take 40ms more, so that jobs last long enough to overlap the flood.
	gauge := testutil.NewGauge(t, origin.URL, 40*time.Millisecond)
	e := startEdge(t, gauge.URL+"/{video_id}/master.m3u8", fmt.Sprintf("\t\tmax_jobs %d\n", maxJobs))

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}}
	defer client.CloseIdleConnections()

	var (
		mu         sync.Mutex
		failures   []string
		latencies  []time.Duration // of status GETs
		posted     = map[string]bool{}
		ready      = map[string]bool{}
		wholes     = map[string][]byte{}
		etags      = map[string]string{}
		firstReady = make(chan struct{})
		counts     = map[string]int{} // answers by kind and status
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	do := func(kind, method, path string, hdr map[string]string) (*http.Response, []byte, time.Duration, bool) {
		req, err := http.NewRequestWithContext(ctx, method, e.base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			fail("%s %s: %v", method, path, err)
			return nil, nil, 0, false
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		took := time.Since(start)
		if err != nil {
			fail("%s %s: reading body: %v", method, path, err)
			return nil, nil, 0, false
		}
		mu.Lock()
		counts[fmt.Sprintf("%s %d", kind, resp.StatusCode)]++
		mu.Unlock()
		return resp, body, took, true
	}
	auth := map[string]string{"Authorization": "Bearer " + apiToken}
	api := func(kind, method, video string) {
		mu.Lock()
		wasPosted := posted[video]
		mu.Unlock()
		resp, body, took, ok := do(kind, method, "/acct/stream/"+video+"/downloads", auth)
		if !ok {
			return
		}
		if resp.StatusCode != http.StatusOK {
			fail("%s %s: %d %s", method, video, resp.StatusCode, body)
			return
		}
		var env envelope
		if err := json.Unmarshal(body, &env); err != nil || !env.Success {
			fail("%s %s: %v %s", method, video, err, body)
			return
		}
		st := env.Result["default"].Status
		mu.Lock()
		defer mu.Unlock()
		if method == "GET" {
			latencies = append(latencies, took)
		} else {
			posted[video] = true
		}
		switch {
		case st == "ready":
			if !ready[video] && len(ready) == 0 {
				close(firstReady)
			}
			ready[video] = true
		case st == "inprogress", st == "" && method == "GET" && !wasPosted:
		default:
			fail("%s %s: status %q (%s)", method, video, st, body)
		}
	}
	// whole returns the video's file, fetched once, or nil while it is being packaged.
	whole := func(video string) []byte {
		mu.Lock()
		w := wholes[video]
		mu.Unlock()
		if w != nil {
			return w
		}
		resp, body, _, ok := do("file", "GET", "/"+video+"/downloads/default.mp4", nil)
		switch {
		case !ok:
			return nil
		case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
			return nil
		case resp.StatusCode != http.StatusOK || int64(len(body)) != resp.ContentLength:
			fail("GET %s file: %d, %d bytes of %d", video, resp.StatusCode, len(body), resp.ContentLength)
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if wholes[video] == nil {
			wholes[video], etags[video] = body, resp.Header.Get("ETag")
		} else if !bytes.Equal(wholes[video], body) {
			fail("GET %s file: two different bodies", video)
		}
		return wholes[video]
	}
	rangeGet := func(video string, rng *rand.Rand) {
		w := whole(video)
		if w == nil {
			return
		}
		from := rng.Intn(len(w))
		to := from + rng.Intn(min(len(w)-from, 256<<10)) // inclusive
		resp, body, _, ok := do("range", "GET", "/"+video+"/downloads/default.mp4", map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", from, to)})
		if !ok {
			return
		}
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, w[from:to+1]) {
			fail("GET %s bytes=%d-%d: %d, %d bytes, want 206 and bytes %d-%d of the file", video, from, to, resp.StatusCode, len(body), from, to)
		}
	}

	// Requests: POSTs and status GETs shuffled; range downloads once something is ready.
	type task func(rng *rand.Rand)
	tasks := make(chan task)
	rng := rand.New(rand.NewSource(1))
	var first []task
	for i := 0; i < nPosts; i++ {
		v := videos[i%nVideos]
		first = append(first, func(*rand.Rand) { api("post", "POST", v) })
	}
	for i := 0; i < nStatus; i++ {
		v := videos[rng.Intn(nVideos)]
		first = append(first, func(*rand.Rand) { api("status", "GET", v) })
	}
	rng.Shuffle(len(first), func(i, j int) { first[i], first[j] = first[j], first[i] })
	var feeders sync.WaitGroup
	feeders.Add(2)
	go func() {
		defer feeders.Done()
		for _, f := range first {
			select {
			case tasks <- f:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		defer feeders.Done()
		// Wait for a ready download, polling once the status GETs of the flood are
		// all sent (these polls are status GETs too).
		for i := 0; ; i++ {
			select {
			case <-firstReady:
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
				api("status", "GET", videos[i%nVideos])
				continue
			}
			break
		}
		for i := 0; i < nRanges; i++ {
			f := func(rng *rand.Rand) {
				// Mostly ready files; a quarter of any created one (503 while packaging).
				mu.Lock()
				from := ready
				if rng.Intn(4) == 0 {
					from = posted
				}
				var vs []string
				for v := range from {
					vs = append(vs, v)
				}
				mu.Unlock()
				slices.Sort(vs)
				rangeGet(vs[rng.Intn(len(vs))], rng)
			}
			select {
			case tasks <- f:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { feeders.Wait(); close(tasks) }()

	start := time.Now()
	var wg sync.WaitGroup
	var ran atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed))
			for f := range tasks {
				f(rng)
				ran.Add(1)
			}
		}(int64(w))
	}
	wg.Wait()
	flood := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("the flood did not end within its deadline (%d requests done)", ran.Load())
	}
	for _, v := range videos {
		if en := e.waitReady(v, "default"); en.Status != "ready" {
			t.Fatalf("%s ended %s: %s", v, en.Status, en.ErrorReasonText)
		}
	}
	all := time.Since(start)

	for _, f := range failures {
		t.Error(f)
	}
	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[int(p*float64(len(latencies)-1))] }
	t.Logf("%d tasks in %v (all ready after %v); answers %v", ran.Load(), flood, all, counts)
	t.Logf("status GET latency over %d: p50 %v, p99 %v, max %v", len(latencies), pct(0.5), pct(0.99), latencies[len(latencies)-1])
	if p := pct(0.99); p > p99Limit {
		t.Errorf("status GET p99 latency %v, want under %v", p, p99Limit)
	}
	if counts["range 206"] == 0 {
		t.Errorf("no range download was answered 206")
	}

	// Each video packaged once: every origin file fetched exactly once, but playlists,
	// which a POST that must wait for a job slot reads too (to answer 404 or 409), and
	// its job again when it starts.
	c := origin.Counts()
	for path, n := range c {
		if n != 1 && !(strings.HasSuffix(path, ".m3u8") && n == 2) {
			t.Errorf("%s fetched %d times", path, n)
		}
	}
	for _, v := range videos {
		for _, s := range []string{"seg_000.ts", "seg_001.ts", "seg_002.ts"} {
			if c["/"+v+"/240p/"+s] != 1 {
				t.Errorf("%s/240p/%s fetched %d times", v, s, c["/"+v+"/240p/"+s])
			}
		}
	}
	if m := gauge.MaxVideos(); m > maxJobs || m < 1 {
		t.Errorf("%d videos had segment requests in flight at once, max_jobs is %d", m, maxJobs)
	} else {
		t.Logf("at most %d videos fetched at once", m)
	}
	// Same source, same bytes (the ETags differ: the URL is part of them).
	for v, w := range wholes {
		if !bytes.Equal(w, wholes[videos[0]]) && wholes[videos[0]] != nil {
			t.Errorf("%s differs from %s although the source is the same", v, videos[0])
		}
		if etags[v] != "" && !strongETag.MatchString(etags[v]) {
			t.Errorf("%s: ETag %s", v, etags[v])
		}
	}
}
