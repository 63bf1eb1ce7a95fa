package packager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
)

// fakeClock replaces now for a test: from 2 January 2030 (after the times of
// readyStore), every call advances one second.
func fakeClock(t *testing.T) {
	var mu sync.Mutex
	tm := time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)
	old := now
	now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		tm = tm.Add(time.Second)
		return tm
	}
	t.Cleanup(func() { now = old })
}

// readyStore is a store holding ready downloads of 100 bytes each, video i last used at
// second i of 2030 (so v0 is the least recently used).
func readyStore(t *testing.T, videos ...string) *storage.Local {
	t.Helper()
	store, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range videos {
		k := storage.Key{Video: v, Type: "default"}
		st, err := store.Stage(k)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.WriteAt([]byte(strings.Repeat(v[:1], 100)), 0); err != nil {
			t.Fatal(err)
		}
		if err := st.Commit(); err != nil {
			t.Fatal(err)
		}
		at := time.Date(2030, 1, 1, 0, 0, i, 0, time.UTC)
		if err := store.SaveRecord(storage.Record{Video: v, Type: "default", Status: storage.StatusReady,
			Origin: "http://o/" + v + ".m3u8", Size: 100, ETag: `"` + v + `"`, Ready: at, Created: at}); err != nil {
			t.Fatal(err)
		}
	}
	return store
}

func status(m *Manager, v string) string {
	st, ok := m.state(storage.Key{Video: v, Type: "default"})
	if !ok {
		return "missing"
	}
	if st.Evicted() {
		return "evicted"
	}
	return string(st.Status)
}

func statuses(m *Manager, videos ...string) string {
	var out []string
	for _, v := range videos {
		out = append(out, v+"="+status(m, v))
	}
	return strings.Join(out, " ")
}

func fileExists(store *storage.Local, v string) bool {
	_, err := os.Stat(filepath.Join(store.Dir(), v, "default.mp4"))
	return err == nil
}

// TestEvictAtStart: over max_storage at start, the least recently used files go, their
// records stay (evicted), and a restart keeps it so.
func TestEvictAtStart(t *testing.T) {
	fakeClock(t)
	videos := []string{"a", "b", "c", "d"}
	store := readyStore(t, videos...)
	m := NewManager(store, Settings{MaxStorage: 250}, zap.NewNop())
	if got, want := statuses(m, videos...), "a=evicted b=evicted c=ready d=ready"; got != want {
		t.Errorf("after start: %s, want %s", got, want)
	}
	for _, v := range videos {
		if fileExists(store, v) != (v >= "c") {
			t.Errorf("file of %s exists: %v", v, fileExists(store, v))
		}
	}
	st, _ := m.state(storage.Key{Video: "a", Type: "default"})
	if st.Status != storage.StatusError || st.ErrorCode != CodeEvicted || !strings.Contains(st.ErrorText, "max_storage") || st.Percent != 0 {
		t.Errorf("evicted state %+v", st)
	}
	if _, _, err := m.Open(context.Background(), storage.Key{Video: "a", Type: "default"}); !errors.Is(err, ErrEvicted) {
		t.Errorf("Open of an evicted file: %v, want ErrEvicted", err)
	}
	m.Destruct()

	recs, errs := store.Records()
	if len(errs) != 0 || len(recs) != 4 {
		t.Fatalf("records after eviction: %d %v", len(recs), errs)
	}
	m = NewManager(store, Settings{MaxStorage: 250}, zap.NewNop())
	defer m.Destruct()
	if got, want := statuses(m, videos...), "a=evicted b=evicted c=ready d=ready"; got != want {
		t.Errorf("after restart: %s, want %s", got, want)
	}
}

// TestEvictLRU: deliveries change the order, an open file is never evicted, and the
// recency survives a restart.
func TestEvictLRU(t *testing.T) {
	fakeClock(t)
	videos := []string{"a", "b", "c", "d"}
	store := readyStore(t, videos...)
	m := NewManager(store, Settings{MaxStorage: 1000}, zap.NewNop())

	// Use a, b, c: the order is now d, a, b, c.
	for _, v := range []string{"a", "b"} { // c below
		f, _, err := m.Open(context.Background(), storage.Key{Video: v, Type: "default"})
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	// c is being delivered: it is pinned.
	pinned, st, err := m.Open(context.Background(), storage.Key{Video: "c", Type: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if st.ETag != `"c"` {
		t.Errorf("ETag %s", st.ETag)
	}
	m.Configure(Settings{MaxStorage: 250})
	m.mu.Lock()
	m.evict(nil)
	m.mu.Unlock()
	if got, want := statuses(m, videos...), "a=evicted b=ready c=ready d=evicted"; got != want {
		t.Errorf("with c open: %s, want %s", got, want)
	}
	// The pinned file reads whole, and its release brings the store within the limit.
	b, err := io.ReadAll(pinned)
	if err != nil || len(b) != 100 {
		t.Errorf("reading the pinned file: %d bytes, %v", len(b), err)
	}
	m.Configure(Settings{MaxStorage: 150})
	if err := pinned.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pinned.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		t.Fatal(err)
	}
	if got, want := statuses(m, videos...), "a=evicted b=evicted c=ready d=evicted"; got != want {
		t.Errorf("after c was closed: %s, want %s", got, want)
	}
	m.mu.Lock()
	if n := m.downloads[storage.Key{Video: "c", Type: "default"}].open; n != 0 {
		t.Errorf("c still has %d deliveries open after a double Close", n)
	}
	m.mu.Unlock()
	m.Destruct()

	// The recency was saved: c's last use is in its record.
	recs, _ := store.Records()
	for _, r := range recs {
		if r.Video == "c" && !r.LastUsed.After(r.Ready) {
			t.Errorf("c's last use not saved: %+v", r)
		}
	}
}

// TestRecencyPersisted: the order of use survives a restart without an eviction pass in
// between (Destruct saves it).
func TestRecencyPersisted(t *testing.T) {
	fakeClock(t)
	videos := []string{"a", "b", "c"}
	store := readyStore(t, videos...)
	m := NewManager(store, Settings{}, zap.NewNop())
	f, _, err := m.Open(context.Background(), storage.Key{Video: "a", Type: "default"})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	m.Destruct()
	m = NewManager(store, Settings{MaxStorage: 200}, zap.NewNop())
	defer m.Destruct()
	if got, want := statuses(m, videos...), "a=ready b=evicted c=ready"; got != want {
		t.Errorf("after restart: %s, want %s", got, want)
	}
}

// TestRecencyNoStall: without max_storage, a job's end writes no record of the other
// downloads (their recency is saved by Destruct).
func TestRecencyNoStall(t *testing.T) {
	store := readyStore(t, "a")
	o := newDemo(t, "b")
	m := NewManager(store, Settings{}, zap.NewNop())
	f, _, err := m.Open(context.Background(), storage.Key{Video: "a", Type: "default"})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if st := create(t, m, o, "b"); st.Status != storage.StatusReady {
		t.Fatalf("b: %+v", st)
	}
	lastUsed := func() time.Time {
		recs, _ := store.Records()
		for _, r := range recs {
			if r.Video == "a" {
				return r.LastUsed
			}
		}
		t.Fatal("no record of a")
		return time.Time{}
	}
	if lu := lastUsed(); !lu.IsZero() {
		t.Errorf("a's record was written when b was packaged (last used %v)", lu)
	}
	m.Destruct()
	if lastUsed().IsZero() {
		t.Error("Destruct did not save a's last use")
	}
}

// TestMissingFile: a ready record whose file went missing is marked evicted, so that
// delivery says so and creating it again packages it again.
func TestMissingFile(t *testing.T) {
	store := readyStore(t, "a")
	m := NewManager(store, Settings{}, zap.NewNop())
	defer m.Destruct()
	os.Remove(filepath.Join(store.Dir(), "a", "default.mp4"))
	if _, _, err := m.Open(context.Background(), storage.Key{Video: "a", Type: "default"}); !errors.Is(err, ErrEvicted) {
		t.Errorf("Open: %v, want ErrEvicted", err)
	}
	if s := status(m, "a"); s != "evicted" {
		t.Errorf("status %s, want evicted", s)
	}
}

// newDemo starts an origin with the demo video under each name.
func newDemo(t *testing.T, names ...string) *testutil.Origin {
	src := t.TempDir()
	for _, v := range names {
		if err := os.CopyFS(filepath.Join(src, v), os.DirFS(filepath.Join(testutil.DemoOrigin(t), "demo"))); err != nil {
			t.Fatal(err)
		}
	}
	return testutil.NewOrigin(t, src)
}

func create(t *testing.T, m *Manager, o *testutil.Origin, v string) State {
	t.Helper()
	k := storage.Key{Video: v, Type: "default"}
	if _, err := m.Create(context.Background(), k, o.URL+"/"+v+"/master.m3u8"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, ok := m.Wait(ctx, k)
	if !ok || st.Status == storage.StatusInProgress {
		t.Fatalf("%s: still %+v after a minute", v, st)
	}
	return st
}

// TestEvictAfterPackaging: packaging evicts the least recently used file, never the one
// just packaged, and packaging an evicted download again gives the same bytes.
func TestEvictAfterPackaging(t *testing.T) {
	o := newDemo(t, "one", "two", "three")
	store, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(store, Settings{MaxJobs: 1, Concurrency: 2}, zap.NewNop())
	defer m.Destruct()
	one := create(t, m, o, "one")
	if one.Status != storage.StatusReady {
		t.Fatalf("one: %+v", one)
	}
	// The limit holds two files; a third evicts the least recently used: one, unless
	// it is used after two was packaged.
	m.Configure(Settings{MaxJobs: 1, Concurrency: 2, MaxStorage: 2*one.Size + one.Size/2})
	two := create(t, m, o, "two")
	f, _, err := m.Open(context.Background(), storage.Key{Video: "one", Type: "default"})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if st := create(t, m, o, "three"); st.Status != storage.StatusReady {
		t.Fatalf("three: %+v", st)
	}
	if got, want := statuses(m, "one", "two", "three"), "one=ready two=evicted three=ready"; got != want {
		t.Errorf("%s, want %s", got, want)
	}
	// Alone over the limit, the file just packaged stays.
	m.Configure(Settings{MaxJobs: 1, Concurrency: 2, MaxStorage: one.Size / 2})
	if st := create(t, m, o, "two"); st.Status != storage.StatusReady || st.ETag != two.ETag {
		t.Fatalf("two packaged again: %+v, want ready with ETag %s", st, two.ETag)
	}
	if got, want := statuses(m, "one", "two", "three"), "one=evicted two=ready three=evicted"; got != want {
		t.Errorf("%s, want %s", got, want)
	}
	if left, _ := os.ReadDir(filepath.Join(store.Dir(), ".tmp")); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
}

// fullStore writes packaged files to /dev/full: a real ENOSPC on every write.
type fullStore struct{ *storage.Local }

func (s fullStore) Stage(k storage.Key) (storage.Staging, error) {
	st, err := s.Local.Stage(k)
	if err != nil {
		return nil, err
	}
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		st.Discard()
		return nil, err
	}
	return fullStaging{st, full}, nil
}

// fullStaging writes to /dev/full and is otherwise the store's staging.
type fullStaging struct {
	storage.Staging
	full *os.File
}

func (s fullStaging) WriteAt(b []byte, off int64) (int, error) { return s.full.WriteAt(b, off) }

func (s fullStaging) Discard() {
	s.full.Close()
	s.Staging.Discard()
}

// TestDiskFull: ENOSPC while writing ends the run in storage_error with a clear text,
// without a temp file left, other downloads untouched.
func TestDiskFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full:", err)
	}
	o := newDemo(t, "ok", "full")
	local := readyStore(t, "x")
	m := NewManager(local, Settings{MaxJobs: 1}, zap.NewNop())
	if st := create(t, m, o, "ok"); st.Status != storage.StatusReady {
		t.Fatalf("ok: %+v", st)
	}
	m.Destruct()

	m = NewManager(fullStore{local}, Settings{MaxJobs: 1}, zap.NewNop())
	defer m.Destruct()
	st := create(t, m, o, "full")
	if st.Status != storage.StatusError || st.ErrorCode != "storage_error" || !strings.Contains(st.ErrorText, "disk is full") {
		t.Fatalf("on a full disk: %+v", st)
	}
	t.Log(st.ErrorText)
	if left, _ := os.ReadDir(filepath.Join(local.Dir(), ".tmp")); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
	if got, want := statuses(m, "x", "ok", "full"), "x=ready ok=ready full=error"; got != want {
		t.Errorf("%s, want %s", got, want)
	}
	for _, v := range []string{"x", "ok"} {
		f, _, err := m.Open(context.Background(), storage.Key{Video: v, Type: "default"})
		if err != nil {
			t.Fatalf("%s after the failure: %v", v, err)
		}
		f.Close()
	}
	recs, errs := local.Records()
	if len(recs) != 3 || len(errs) != 0 {
		t.Errorf("records: %d, %v", len(recs), errs)
	}
}

// TestUnwritableStore: a temp file that cannot be created is a storage_error too.
func TestUnwritableStore(t *testing.T) {
	o := newDemo(t, "v")
	local := readyStore(t, "x")
	m := NewManager(local, Settings{MaxJobs: 1}, zap.NewNop())
	defer m.Destruct()
	// Records can still be saved (the record of the failure too), but .tmp holds no file.
	m.store = noTemp{local}
	st := create(t, m, o, "v")
	if st.Status != storage.StatusError || st.ErrorCode != "storage_error" || !strings.Contains(st.ErrorText, "creating the temp file") {
		t.Fatalf("%+v", st)
	}
	if got, want := statuses(m, "x", "v"), "x=ready v=error"; got != want {
		t.Errorf("%s, want %s", got, want)
	}
}

type noTemp struct{ *storage.Local }

func (noTemp) Stage(storage.Key) (storage.Staging, error) {
	return nil, &os.PathError{Op: "open", Path: "/store/.tmp/v", Err: os.ErrPermission}
}

// TestOutputLimit: a file over MaxOutput ends in limit_exceeded, naming the limit.
func TestOutputLimit(t *testing.T) {
	o := newDemo(t, "v", "w")
	store, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(store, Settings{MaxJobs: 1, MaxOutput: 10 << 20}, zap.NewNop())
	w := create(t, m, o, "w")
	m.Destruct()
	if w.Status != storage.StatusReady {
		t.Fatalf("under the limit: %+v", w)
	}
	// Reached in the media; reached only with the header (written last).
	for _, limit := range []int64{100_000, w.Size - 1} {
		m := NewManager(store, Settings{MaxJobs: 1, MaxOutput: limit}, zap.NewNop())
		st := create(t, m, o, "v")
		m.Destruct()
		if st.Status != storage.StatusError || st.ErrorCode != "limit_exceeded" || !strings.Contains(st.ErrorText, fmt.Sprint(limit)) {
			t.Fatalf("limit %d: %+v", limit, st)
		}
		if left, _ := os.ReadDir(filepath.Join(store.Dir(), ".tmp")); len(left) != 0 {
			t.Errorf("temp files left: %v", left)
		}
	}
}

// TestWait: Wait returns when the job ends, or when its context does.
func TestWait(t *testing.T) {
	o := newDemo(t, "v")
	store, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(store, Settings{MaxJobs: 1}, zap.NewNop())
	defer m.Destruct()
	k := storage.Key{Video: "v", Type: "default"}
	if _, ok := m.Wait(context.Background(), k); ok {
		t.Error("Wait for a download that does not exist")
	}
	o.HoldSegmentsAfter(0)
	if _, err := m.Create(context.Background(), k, o.URL+"/v/master.m3u8"); err != nil {
		t.Fatal(err)
	}
	<-o.Held
	// Ended as soon as Wait waits on it.
	ctx, cancel := context.WithCancel(context.Background())
	st, _ := m.Wait(onWait(ctx, cancel), k)
	if st.Status != storage.StatusInProgress {
		t.Errorf("Wait timed out with %+v", st)
	}
	// The job ends once Wait waits for it.
	if st, _ := m.Wait(onWait(context.Background(), o.Release), k); st.Status != storage.StatusReady {
		t.Errorf("Wait ended with %+v", st)
	}
}

// waitWatch is a context that calls a function, once, when first asked for
// its Done channel: when Wait starts waiting on it.
type waitWatch struct {
	context.Context
	once func()
}

func onWait(ctx context.Context, f func()) context.Context {
	return &waitWatch{Context: ctx, once: sync.OnceFunc(f)}
}

func (w *waitWatch) Done() <-chan struct{} {
	w.once()
	return w.Context.Done()
}
