// Package testutil has what the project's tests share: free ports, the ffmpeg tools
// (which must be installed: a test that needs them fails without them), the demo
// fixtures, MP4 inspection and an HLS origin on 127.0.0.1. Starting Caddy is in
// internal/testcaddy, so that media packages' tests do not link Caddy.
package testutil

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Tool returns the path of an external program the test needs (ffmpeg, ffprobe). A
// missing tool fails the test (CI installs them, so a skip would hide a broken setup),
// except with -short, which skips.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if testing.Short() {
			t.Skipf("%s not found (skipped with -short): %v", name, err)
		}
		t.Fatalf("%s is needed by this test and is not installed (scripts/test.sh installs ffmpeg and chromium; or run with -short): %v", name, err)
	}
	return p
}

// Run runs an external tool and fails the test with its output when it fails.
func Run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	return RunIn(t, "", name, args...)
}

// RunIn is Run in the working directory dir.
func RunIn(t testing.TB, dir, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(Tool(t, name), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return out
}

// RepoRoot returns the module root (the directory holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("runtime.Caller failed")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// DemoOrigin returns the directory of the demo HLS origin (testdata/demo/make.sh).
func DemoOrigin(t testing.TB) string {
	return filepath.Join(RepoRoot(t), "testdata", "demo", "origin")
}

// DemoSegments returns the paths of the demo fixture's 240p TS segments, in order.
func DemoSegments(t testing.TB) []string {
	t.Helper()
	dir := filepath.Join(DemoOrigin(t), "demo", "240p")
	var out []string
	for _, n := range []string{"seg_000.ts", "seg_001.ts", "seg_002.ts"} {
		p := filepath.Join(dir, n)
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("fixture missing: %v", err)
		}
		out = append(out, p)
	}
	return out
}

// Probe is the part of ffprobe's JSON output the tests look at.
type Probe struct {
	Streams []struct {
		Index         int    `json:"index"`
		CodecType     string `json:"codec_type"`
		CodecName     string `json:"codec_name"`
		CodecTagName  string `json:"codec_tag_string"`
		Width         int    `json:"width"`
		Height        int    `json:"height"`
		SampleRate    string `json:"sample_rate"`
		Channels      int    `json:"channels"`
		ChannelLayout string `json:"channel_layout"`
		StartTime     string `json:"start_time"`
		Duration      string `json:"duration"`
		NbFrames      string `json:"nb_frames"`
		NbReadFrames  string `json:"nb_read_frames"`
		AvgFrameRate  string `json:"avg_frame_rate"`
		HasBFrames    int    `json:"has_b_frames"`
		// Tags: language (ISO 639-2), title, handler_name…
		Tags map[string]string `json:"tags"`
		// Disposition: default, forced…, 0 or 1.
		Disposition map[string]int `json:"disposition"`
	} `json:"streams"`
	Format struct {
		FormatName string            `json:"format_name"`
		Duration   string            `json:"duration"`
		StartTime  string            `json:"start_time"`
		Tags       map[string]string `json:"tags"`
	} `json:"format"`
}

// ProbeFile runs ffprobe on input (a file or an ffmpeg URL such as concat:a|b) with
// extra arguments (e.g. -count_frames).
func ProbeFile(t testing.TB, input string, extra ...string) *Probe {
	t.Helper()
	args := append([]string{"-v", "error", "-show_streams", "-show_format", "-of", "json"}, extra...)
	out, err := exec.Command(Tool(t, "ffprobe"), append(args, input)...).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", input, err)
	}
	var p Probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe output: %v", err)
	}
	return &p
}

// Seconds parses one of ffprobe's decimal strings.
func Seconds(t testing.TB, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("not a number from ffprobe: %q", s)
	}
	return v
}

// DecodeErrors decodes the whole file with ffmpeg and returns what it printed at the
// error level: empty for a clean file.
func DecodeErrors(t testing.TB, path string) string {
	t.Helper()
	out, err := exec.Command(Tool(t, "ffmpeg"), "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("ffmpeg failed (%v): %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// TopLevelBoxes lists the types of the top-level boxes of an MP4 file, in order.
func TopLevelBoxes(t testing.TB, path string) []string {
	t.Helper()
	var types []string
	for _, b := range topLevel(t, path) {
		types = append(types, b.typ)
	}
	return types
}

// MediaStart is the offset of the mdat box's payload in an MP4 file.
func MediaStart(t testing.TB, path string) int64 {
	t.Helper()
	for _, b := range topLevel(t, path) {
		if b.typ == "mdat" {
			return b.payload
		}
	}
	t.Fatalf("%s has no mdat box", path)
	return 0
}

type box struct {
	typ     string
	payload int64 // offset of the payload
}

func topLevel(t testing.TB, path string) []box {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var boxes []box
	var off int64
	hdr := make([]byte, 16)
	for {
		if _, err := f.ReadAt(hdr[:8], off); err == io.EOF {
			return boxes
		} else if err != nil {
			t.Fatalf("reading box header at %d: %v", off, err)
		}
		size := int64(binary.BigEndian.Uint32(hdr[:4]))
		b := box{typ: string(hdr[4:8]), payload: off + 8}
		switch size {
		case 1:
			if _, err := f.ReadAt(hdr[8:16], off+8); err != nil {
				t.Fatalf("reading largesize at %d: %v", off, err)
			}
			size = int64(binary.BigEndian.Uint64(hdr[8:16]))
			b.payload += 8
		case 0:
			return append(boxes, b) // to the end of the file
		}
		boxes = append(boxes, b)
		if size < 8 {
			t.Fatalf("box %q at %d has size %d", hdr[4:8], off, size)
		}
		off += size
	}
}
