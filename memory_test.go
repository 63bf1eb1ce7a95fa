package streamdownloads_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testcaddy"
	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// maxJobMemory is what one packaging job may add to Caddy's resident memory, whatever
// the input (issue 12).
const maxJobMemory = 100 << 20

// TestMemoryPerJob packages, one at a time in the project's Caddy, segments that never
// end, streamed by the origin without Content-Length and made as they are sent (up to
// 8 GiB, never held): an MPEG-TS segment that is one video PES without end (one start
// code, then slice bytes that never complete the access unit), an fMP4 segment whose moof
// announces a 64 MiB video sample in an mdat of 1 TiB, and ones whose mdat (to the end of
// the file) goes on without end after the samples its moof announces (small audio
// frames; a video sample of 16 MiB, the most allowed, written to the file). Each job must end
// in error saying what was too large, and Caddy's peak resident memory during it (the
// kernel's high-water mark, reset before the job) must stay within maxJobMemory of its
// idle resident memory.
func TestMemoryPerJob(t *testing.T) {
	bin := testcaddy.Binary(t) // skips with -short
	init, err := os.ReadFile(filepath.Join("testdata", "conformance", "streams", "fmp4-h264-aac", "init.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	es := []byte{0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x65, 0x88} // AUD, IDR slice header
	slice := bytes.Repeat([]byte{0xab}, 64<<10)               // no start code in it
	tsHead, tsNext := testutil.EndlessTS(func() []byte {
		if es != nil {
			b := es
			es = nil
			return b
		}
		return slice
	}, testutil.TSH264)
	samples := make([]uint32, 50)
	for i := range samples {
		samples[i] = 300
	}
	junk := testutil.Repeat(bytes.Repeat([]byte{0x21}, 64<<10))
	// The largest video sample allowed (16 MiB): one IDR slice NAL unit, read whole and
	// written to the file, in an mdat that then goes on without end.
	const largest = 16 << 20
	idr := binary.BigEndian.AppendUint32(nil, largest-4)
	idr = append(idr, 0x65, 0x88)
	slices := testutil.Repeat(bytes.Repeat([]byte{0xab}, 64<<10))
	type source struct {
		head []byte
		next func() []byte
	}
	cases := []struct {
		video  string
		seg    string
		src    source
		code   string
		reason string // in errorReasonText
	}{
		{"endless-pes", "seg.ts", source{tsHead, tsNext}, "malformed_segment", "a video access unit larger than 16 MiB"},
		{"huge-sample", "seg.m4s", source{testutil.FMP4Fragment(1, 0, 3000, []uint32{64 << 20}, 1<<40), junk}, "malformed_segment", "a video sample of 67108864 bytes"},
		{"endless-mdat", "seg.m4s", source{testutil.FMP4Fragment(2, 0, 1024, samples, 0), junk}, "limit_exceeded", "limits.segment_size"},
		{"largest-sample", "seg.m4s", source{append(testutil.FMP4Fragment(1, 0, 3000, []uint32{largest}, 0), idr...), slices}, "limit_exceeded", "limits.segment_size"},
	}

	var sent atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		video, file, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		for _, c := range cases {
			if c.video != video {
				continue
			}
			switch {
			case file == "index.m3u8":
				pl := "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:10\n#EXT-X-PLAYLIST-TYPE:VOD\n"
				if strings.HasSuffix(c.seg, ".m4s") {
					pl += "#EXT-X-MAP:URI=\"init.mp4\"\n"
				}
				fmt.Fprintf(w, "%s#EXTINF:10.0,\n%s\n#EXT-X-ENDLIST\n", pl, c.seg)
			case file == "init.mp4":
				w.Write(init)
			case file == c.seg:
				// Chunked, Range ignored: a body of unknown length, made as it is sent.
				w.Header().Set("Content-Type", "application/octet-stream")
				w.WriteHeader(http.StatusOK)
				h := &testutil.Hostile{Head: c.src.head, Next: c.src.next, Limit: 8 << 30}
				n, _ := io.Copy(w, h)
				sent.Add(n)
			default:
				http.NotFound(w, r)
			}
			return
		}
		http.NotFound(w, r)
	}))
	defer origin.Close()

	for _, c := range cases {
		// A Caddy of its own for each job: the Go runtime keeps what a job's heap took,
		// so a job after another would be measured against a higher floor.
		e := newEdge(t, origin.URL+"/{video_id}/index.m3u8", "")
		addr := e.addr()
		p := testcaddy.StartProcess(t, bin, e.cfg, addr)
		pid := testutil.ChildPID(t, bin)
		e.call("GET", "/acct/stream/warm-up/downloads")
		time.Sleep(time.Second)
		idle, err := testutil.ProcStatus(pid, "VmRSS")
		if err != nil {
			t.Fatal(err)
		}

		before := sent.Load()
		rss := testutil.FollowRSS(pid)
		start := time.Now()
		if code, env := e.call("POST", "/acct/stream/"+c.video+"/downloads"); code != http.StatusOK {
			t.Fatalf("POST %s: %d %+v", c.video, code, env.Errors)
		}
		en := e.waitReady(c.video, "default")
		peak, hwm := rss.Peak()
		t.Logf("%s: %s after %v and %d MiB sent; Caddy's resident memory %d MiB idle, %d MiB at most (%+d MiB; high-water mark reset: %v); %s: %s",
			c.video, en.Status, time.Since(start).Round(time.Millisecond), (sent.Load()-before)>>20, idle>>20, peak>>20, (peak-idle)>>20, hwm, en.ErrorReasonCode, en.ErrorReasonText)
		if en.Status != "error" || en.ErrorReasonCode != c.code || !strings.Contains(en.ErrorReasonText, c.reason) {
			t.Errorf("%s: %s %s %q, want error %s saying %q", c.video, en.Status, en.ErrorReasonCode, en.ErrorReasonText, c.code, c.reason)
		}
		if peak-idle > maxJobMemory {
			t.Errorf("%s: Caddy's resident memory went %d MiB over idle (%d MiB) during the job, more than %d MiB", c.video, (peak-idle)>>20, idle>>20, maxJobMemory>>20)
		}
		p.Kill()
		if strings.Contains(strings.ToLower(p.Logs()), "panic") {
			t.Errorf("%s: caddy logged a panic:\n%s", c.video, p.Logs())
		}
	}
}
