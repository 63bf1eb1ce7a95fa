package packager

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
)

// fmp4Flavours are the fMP4 streams of the conformance suite (issue 16: byte-identical
// instant delivery for every one of them).
func fmp4Flavours(t *testing.T) []string {
	t.Helper()
	root := filepath.Join(testutil.RepoRoot(t), "testdata", "conformance", "streams")
	dirs, err := filepath.Glob(filepath.Join(root, "fmp4-*"))
	if err != nil {
		t.Fatal(err)
	}
	dirs = append(dirs, filepath.Join(root, "byterange-fmp4"), filepath.Join(root, "audio-only-fmp4"))
	if len(dirs) < 9 {
		t.Fatalf("only %d fMP4 flavours found", len(dirs))
	}
	return dirs
}

// instantOrigin serves the demo (MPEG-TS, as "blocker") and the given conformance
// streams, each under its directory's name.
func instantOrigin(t *testing.T, dirs []string) *testutil.Origin {
	t.Helper()
	root := t.TempDir()
	if err := os.CopyFS(filepath.Join(root, "blocker"), os.DirFS(filepath.Join(testutil.DemoOrigin(t), "demo"))); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if err := os.CopyFS(filepath.Join(root, filepath.Base(d)), os.DirFS(d)); err != nil {
			t.Fatal(err)
		}
	}
	return testutil.NewOrigin(t, root)
}

// readAt reads n bytes at off of f, as a Range request would.
func readAt(t *testing.T, f io.ReadSeeker, off, n int64) ([]byte, error) {
	t.Helper()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(f, b)
	return b, err
}

// TestInstantQueued: a download of each fMP4 flavour that waits for a job slot (behind
// a job held at the origin) is opened at once as the file it will be: its size and
// ETag, the whole file and random ranges read from the origin, are those of the file
// stored once it is packaged. An MPEG-TS download in progress is not (ErrInProgress).
func TestInstantQueued(t *testing.T) {
	dirs := fmp4Flavours(t)
	o := instantOrigin(t, dirs)
	store, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(store, Settings{MaxJobs: 1, Concurrency: 4}, zap.NewNop())
	defer m.Destruct()
	ctx := context.Background()

	o.HoldSegmentsAfter(0)
	blocker := storage.Key{Video: "blocker", Type: "default"}
	if _, err := m.Create(ctx, blocker, o.URL+"/blocker/master.m3u8"); err != nil {
		t.Fatal(err)
	}
	<-o.Held
	if _, _, err := m.Open(ctx, blocker); !errors.Is(err, ErrInProgress) {
		t.Errorf("open of an MPEG-TS download being packaged: %v, want ErrInProgress", err)
	}

	type early struct {
		st    State
		whole []byte
		parts map[[2]int64][]byte
	}
	got := map[string]early{}
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, dir := range dirs {
		name := filepath.Base(dir)
		k := storage.Key{Video: name, Type: "default"}
		if name == "audio-only-fmp4" {
			k.Type = "audio"
		}
		if _, err := m.Create(ctx, k, o.URL+"/"+name+"/play.m3u8"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		f, st, err := m.Open(ctx, k)
		if err != nil {
			t.Fatalf("%s: open while queued: %v", name, err)
		}
		if st.Status != storage.StatusInProgress || st.Size <= 0 || st.ETag == "" {
			t.Errorf("%s: state %+v, want in progress with the planned size and ETag", name, st)
		}
		e := early{st: st, parts: map[[2]int64][]byte{}}
		// Ranges first, in a random order, then the whole file.
		for range 8 {
			off := rnd.Int64N(st.Size)
			n := 1 + rnd.Int64N(min(st.Size-off, 64<<10))
			b, err := readAt(t, f, off, n)
			if err != nil {
				t.Fatalf("%s: bytes %d+%d: %v", name, off, n, err)
			}
			e.parts[[2]int64{off, n}] = b
		}
		if e.whole, err = readAt(t, f, 0, st.Size); err != nil {
			t.Fatalf("%s: whole file: %v", name, err)
		}
		if n, err := f.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Errorf("%s: read past the end: %d, %v", name, n, err)
		}
		f.Close()
		got[name] = e
	}
	if st, _, _ := m.State(ctx, blocker); st.Status != storage.StatusInProgress {
		t.Fatalf("the blocker is %s: the downloads were not all queued", st.Status)
	}
	o.Release()
	for _, dir := range dirs {
		name := filepath.Base(dir)
		e := got[name]
		st := waitFor(t, m, e.st.Key())
		if st.Status != storage.StatusReady {
			t.Errorf("%s: %+v", name, st)
			continue
		}
		stored, _ := read(t, m, st.Key())
		if st.ETag != e.st.ETag || st.Size != e.st.Size || !bytes.Equal(stored, e.whole) {
			t.Errorf("%s: stored file %d bytes, ETag %s; instant one %d bytes, ETag %s, same bytes: %v",
				name, len(stored), st.ETag, len(e.whole), e.st.ETag, bytes.Equal(stored, e.whole))
			continue
		}
		for r, b := range e.parts {
			if !bytes.Equal(stored[r[0]:r[0]+r[1]], b) {
				t.Errorf("%s: bytes %d+%d differ from the stored file's", name, r[0], r[1])
			}
		}
	}
}

// TestInstantLive: a download whose job is running (held at the origin after its first
// segment) is read whole while the job goes on; the bytes and ETag are the stored
// file's. A delivery whose origin read breaks off for good ends with an error after
// bytes of the file only (the response is cut, never padded).
func TestInstantLive(t *testing.T) {
	dir := filepath.Join(testutil.RepoRoot(t), "testdata", "conformance", "streams", "fmp4-h264-aac")
	o := instantOrigin(t, []string{dir})
	store, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(store, Settings{MaxJobs: 1, Concurrency: 1}, zap.NewNop())
	defer m.Destruct()
	ctx := context.Background()
	o.HoldMatching(1, testutil.JobSegmentRequest)
	k := storage.Key{Video: "fmp4-h264-aac", Type: "default"}
	if _, err := m.Create(ctx, k, o.URL+"/fmp4-h264-aac/play.m3u8"); err != nil {
		t.Fatal(err)
	}
	<-o.Held
	f, st, err := m.Open(ctx, k)
	if err != nil {
		t.Fatalf("open while packaged: %v", err)
	}
	done := make(chan []byte)
	go func() {
		defer f.Close()
		b, err := io.ReadAll(f)
		if err != nil {
			t.Errorf("instant read: %v", err)
		}
		done <- b
	}()
	select {
	case <-done:
		t.Fatal("the instant read ended while the job was held")
	case <-time.After(50 * time.Millisecond):
	}
	o.Release()
	early := <-done
	st2 := waitFor(t, m, k)
	stored, _ := read(t, m, k)
	if st2.ETag != st.ETag || !bytes.Equal(stored, early) {
		t.Errorf("stored %d bytes ETag %s; instant %d bytes ETag %s", len(stored), st2.ETag, len(early), st.ETag)
	}
}

// TestFleetInstant: an instance of a fleet serves a download that another instance
// packages (its job held at the origin) at once, from the origin's byte ranges, with
// the bytes and ETag the holder then publishes.
func TestFleetInstant(t *testing.T) {
	dir := filepath.Join(testutil.RepoRoot(t), "testdata", "conformance", "streams", "fmp4-hevc-aac")
	o := instantOrigin(t, []string{dir})
	ms, _ := fleetOf(t, 2, Settings{MaxJobs: 1})
	o.HoldMatching(0, testutil.JobSegmentRequest)
	k := storage.Key{Video: "fmp4-hevc-aac", Type: "default"}
	if _, err := ms[1].Create(context.Background(), k, o.URL+"/fmp4-hevc-aac/play.m3u8"); err != nil {
		t.Fatal(err)
	}
	<-o.Held // node1 holds the lease and packages it
	var f storage.File
	var st State
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if f, st, err = ms[0].Open(context.Background(), k); err == nil {
			break
		}
		if !errors.Is(err, ErrNotCreated) || time.Now().After(deadline) {
			t.Fatalf("node0: open while node1 packages: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // node0 learns of it within the staleness bound
	}
	early, err := io.ReadAll(f)
	f.Close()
	if err != nil || st.Status != storage.StatusInProgress || int64(len(early)) != st.Size {
		t.Fatalf("node0 instant: %v, %d bytes, state %+v", err, len(early), st)
	}
	o.Release()
	ready := waitFor(t, ms[0], k)
	stored, _ := read(t, ms[0], k)
	if ready.ETag != st.ETag || !bytes.Equal(stored, early) {
		t.Errorf("published %d bytes ETag %s; node0 sent %d bytes ETag %s", len(stored), ready.ETag, len(early), st.ETag)
	}
}

// TestInstantSubtitles: a download of an fMP4 variant with a WebVTT subtitle rendition
// is served at once with its tx3g track (read before the first byte), the bytes and
// ETag of the file then stored.
func TestInstantSubtitles(t *testing.T) {
	dir := filepath.Join(testutil.RepoRoot(t), "testdata", "conformance", "streams", "fmp4-h264-aac")
	o := instantOrigin(t, []string{dir})
	for name, data := range map[string]string{
		"subbed/play.m3u8": "#EXTM3U\n#EXT-X-VERSION:7\n" +
			`#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="s",NAME="Deutsch",LANGUAGE="de",DEFAULT=YES,URI="de.m3u8"` + "\n" +
			`#EXT-X-STREAM-INF:BANDWIDTH=200000,SUBTITLES="s"` + "\n../fmp4-h264-aac/play.m3u8\n",
		"subbed/de.m3u8": "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:2.0,\nde.vtt\n#EXT-X-ENDLIST\n",
		"subbed/de.vtt":  "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:7200,LOCAL:00:00:00.000\n\n00:00:00.200 --> 00:00:01.000\nHallo\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(o.Dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(o.Dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	store, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(store, Settings{MaxJobs: 1}, zap.NewNop())
	defer m.Destruct()
	o.HoldMatching(0, testutil.JobSegmentRequest)
	k := storage.Key{Video: "subbed", Type: "default"}
	if _, err := m.Create(context.Background(), k, o.URL+"/subbed/play.m3u8"); err != nil {
		t.Fatal(err)
	}
	<-o.Held
	f, st, err := m.Open(context.Background(), k)
	if err != nil {
		t.Fatalf("open while packaged: %v", err)
	}
	early, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	o.Release()
	ready := waitFor(t, m, k)
	stored, _ := read(t, m, k)
	if ready.Status != storage.StatusReady || ready.ETag != st.ETag || !bytes.Equal(stored, early) {
		t.Fatalf("stored %d bytes ETag %s (%s); instant %d bytes ETag %s", len(stored), ready.ETag, ready.Status, len(early), st.ETag)
	}
	if !bytes.Contains(stored, []byte("tx3g")) || !bytes.Contains(stored, []byte("\x00\x05Hallo")) {
		t.Error("no tx3g track with the cue in the file")
	}
}
