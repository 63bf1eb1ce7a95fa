package packager

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
)

// TestResolveTimeout: a playlist that never finishes (headers and half the body, then
// nothing, as a dribbling origin) ends the download at ResolveTimeout in origin_error
// naming the playlist, never in internal_error "context deadline exceeded"; Create
// answers in progress at CreateWait, and the record on disk says what the API says.
func TestResolveTimeout(t *testing.T) {
	o := testutil.NewFaultOrigin(t, filepath.Join(testutil.DemoOrigin(t)))
	o.Always("/demo/master.m3u8", testutil.Fault{Kind: testutil.Stall})
	store, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(store, Settings{MaxJobs: 1, CreateWait: 200 * time.Millisecond, ResolveTimeout: time.Second}, zap.NewNop())
	defer m.Destruct()
	k := storage.Key{Video: "demo", Type: "default"}
	start := time.Now()
	st, err := m.Create(context.Background(), k, o.URL+"/demo/master.m3u8?token=secret")
	if err != nil || st.Status != storage.StatusInProgress || time.Since(start) > 900*time.Millisecond {
		t.Fatalf("Create: %+v, %v after %v; want in progress at CreateWait", st, err, time.Since(start))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, _ = m.Wait(ctx, k)
	t.Logf("%s: %s", st.ErrorCode, st.ErrorText)
	want := "origin request for " + o.URL + "/demo/master.m3u8 failed: the origin did not answer its playlists within 1s"
	if st.Status != storage.StatusError || st.ErrorCode != "origin_error" || st.ErrorText != want {
		t.Errorf("ended %s %q %q, want origin_error %q", st.Status, st.ErrorCode, st.ErrorText, want)
	}
	recs, _ := store.Records()
	if len(recs) != 1 || recs[0].ErrorCode != "origin_error" || recs[0].ErrorText != want {
		t.Errorf("records on disk: %+v", recs)
	}
}

// failingRecords is a store whose record saves fail like a folder that cannot be made.
type failingRecords struct{ *storage.Local }

func (s failingRecords) SaveRecord(r storage.Record) error {
	return &os.PathError{Op: "mkdir", Path: filepath.Join(s.Dir(), r.Video), Err: errors.New("not a directory")}
}

// TestNoLocalPaths: what a client may read of a storage failure (the errorReasonText of
// a disk that is full or a temp file that cannot be made, Create's error when the
// record cannot be saved, Delete's when the files cannot be removed) names no local
// path; it is a storage error, not an origin's or an internal one.
func TestNoLocalPaths(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full:", err)
	}
	o := newDemo(t, "full", "temp", "rec", "del")
	local, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	noPath := func(what, text string) {
		t.Helper()
		t.Logf("%s: %s", what, text)
		if strings.Contains(text, local.Dir()) || strings.Contains(text, "/store/") || strings.Contains(text, "/.tmp") {
			t.Errorf("%s names a local path: %s", what, text)
		}
	}
	m := NewManager(fullStore{local}, Settings{MaxJobs: 1}, zap.NewNop())
	st := create(t, m, o, "full")
	if st.ErrorCode != "storage_error" || !strings.Contains(st.ErrorText, "disk is full") {
		t.Errorf("full: %+v", st)
	}
	noPath("disk full", st.ErrorText)
	m.store = noTemp{local}
	st = create(t, m, o, "temp")
	if st.ErrorCode != "storage_error" {
		t.Errorf("temp: %+v", st)
	}
	noPath("no temp file", st.ErrorText)

	m.store = failingRecords{local}
	_, err = m.Create(context.Background(), storage.Key{Video: "rec", Type: "default"}, o.URL+"/rec/master.m3u8")
	if !errors.Is(err, ErrStorage) {
		t.Errorf("Create with records that cannot be saved: %v, want a storage error", err)
	} else {
		noPath("record save", err.Error())
	}
	if _, ok := m.state(storage.Key{Video: "rec", Type: "default"}); ok {
		t.Errorf("a download whose record could not be saved was created")
	}

	m.store = local
	if st := create(t, m, o, "del"); st.Status != storage.StatusReady {
		t.Fatalf("del: %+v", st)
	}
	// A record that cannot be removed: a folder in its place, not empty.
	rec := filepath.Join(local.Dir(), "del", "default.json")
	if err := os.Remove(rec); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(rec, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Delete(context.Background(), "del"); !errors.Is(err, ErrStorage) {
		t.Errorf("Delete: %v, want a storage error", err)
	} else {
		noPath("delete", err.Error())
	}
	m.Destruct()
}
