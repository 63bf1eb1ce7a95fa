package packager

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
)

// TestPackageSameBytes: Package makes the bytes the Manager stores for the same source,
// type and max_height, with the same ETag.
func TestPackageSameBytes(t *testing.T) {
	o := newDemo(t, "v")
	for _, c := range []struct {
		name      string
		typ       Type
		maxHeight int
	}{
		{"default", DefaultType, 0},
		{"audio", AudioType, 0},
		{"max_height", DefaultType, 144},
	} {
		t.Run(c.name, func(t *testing.T) {
			store, err := storage.NewLocal(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			m := NewManager(store, Settings{MaxJobs: 1, MaxHeight: c.maxHeight}, zap.NewNop())
			defer m.Destruct()
			k := storage.Key{Video: "v", Type: c.typ.Name}
			url := o.URL + "/v/master.m3u8"
			if _, err := m.Create(context.Background(), k, url); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			st, ok := m.Wait(ctx, k)
			if !ok || st.Status != storage.StatusReady {
				t.Fatalf("the manager's download: %+v", st)
			}
			f, _, err := m.Open(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			want, err := io.ReadAll(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}

			out := filepath.Join(t.TempDir(), "out"+c.typ.Ext)
			res, err := Package(ctx, url, out, PackageOptions{Type: c.typ, MaxHeight: c.maxHeight})
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Package made %d bytes, the manager %d: they differ", len(got), len(want))
			}
			if res.Size != int64(len(got)) || res.ETag != st.ETag || res.Type != c.typ {
				t.Errorf("result %+v; manager's record %+v", res, st.Record)
			}
			if wantH := map[int]int{0: 240, 144: 144}[c.maxHeight]; res.Variant.Height != wantH {
				t.Errorf("variant %+v, want height %d", res.Variant, wantH)
			}
			if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o644 {
				t.Errorf("output file: %v, %v", fi.Mode(), err)
			}
			if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 1 {
				t.Errorf("the output directory holds %d entries, want the file alone", len(ents))
			}
		})
	}
}

// TestPackageProgress: Progress hears monotonic figures, and a last call with the whole
// duration done, the file's size written and the bytes fetched.
func TestPackageProgress(t *testing.T) {
	o := newDemo(t, "v")
	var mu sync.Mutex
	var calls []Progress
	out := filepath.Join(t.TempDir(), "v.mp4")
	res, err := Package(context.Background(), o.URL+"/v/master.m3u8", out, PackageOptions{
		ProgressInterval: time.Millisecond,
		Progress: func(p Progress) {
			mu.Lock()
			calls = append(calls, p)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) < 2 {
		t.Fatalf("%d progress calls", len(calls))
	}
	for i := 1; i < len(calls); i++ {
		a, b := calls[i-1], calls[i]
		if b.Done < a.Done || b.Fetched < a.Fetched || b.Elapsed < a.Elapsed || a.Finished {
			t.Errorf("progress went back, or went on after the end: %+v then %+v", a, b)
		}
	}
	last := calls[len(calls)-1]
	if !last.Finished || last.Done != last.Total || last.Total == 0 || last.Fraction() != 1 ||
		last.Written != res.Size || last.Fetched != res.Fetched || res.Fetched < res.Size/2 {
		t.Errorf("last progress %+v, result %+v", last, res)
	}
}

// TestPackageCancel: a run cancelled mid-way (a segment held at the origin) ends in
// context.Canceled and leaves nothing in the output's directory, nor touches a file that
// was at out before.
func TestPackageCancel(t *testing.T) {
	o := newDemo(t, "v")
	dir := t.TempDir()
	out := filepath.Join(dir, "v.mp4")
	if err := os.WriteFile(out, []byte("before"), 0o644); err != nil {
		t.Fatal(err)
	}
	o.HoldSegmentsAfter(1)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := Package(ctx, o.URL+"/v/master.m3u8", out, PackageOptions{Concurrency: 1})
		errc <- err
	}()
	select {
	case <-o.Held:
	case <-time.After(time.Minute):
		t.Fatal("no segment request was held")
	}
	// The temp file is there meanwhile.
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("while packaging the directory holds %d entries, want the old file and the temp one", len(ents))
	}
	cancel()
	err := <-errc
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
	if code, _ := Classify(err); code != "canceled" {
		t.Errorf("Classify: %s", code)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("after the cancelled run the directory holds %d entries", len(ents))
	}
	if b, _ := os.ReadFile(out); string(b) != "before" {
		t.Errorf("the file at out was changed: %q", b)
	}
}

// TestPackageErrors: the origin's refusals are classified as the module's, and no file
// is left.
func TestPackageErrors(t *testing.T) {
	o := newDemo(t, "v", "live")
	live := filepath.Join(o.Dir, "live", "240p", "index.m3u8")
	b, err := os.ReadFile(live)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(live, bytes.Replace(bytes.Replace(b, []byte("#EXT-X-ENDLIST"), nil, 1), []byte("#EXT-X-PLAYLIST-TYPE:VOD"), nil, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, code string }{
		{"/missing/master.m3u8", "not_found"},
		{"/live/240p/index.m3u8", "live"},
	} {
		dir := t.TempDir()
		_, err := Package(context.Background(), o.URL+c.path, filepath.Join(dir, "out.mp4"), PackageOptions{})
		if code, text := Classify(err); code != c.code || text == "" {
			t.Errorf("%s: %s (%s), want %s", c.path, code, text, c.code)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("%s: %d files left", c.path, len(ents))
		}
	}
	// A directory that cannot take the file: storage_error naming it.
	_, err = Package(context.Background(), o.URL+"/v/master.m3u8", filepath.Join(t.TempDir(), "no", "such", "out.mp4"), PackageOptions{})
	if code, _ := Classify(err); code != "storage_error" {
		t.Errorf("missing directory: %v", err)
	}
}
