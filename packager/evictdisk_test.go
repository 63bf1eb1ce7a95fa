package packager

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
)

// heldRecords is a store whose record saves wait until the test lets them go: a disk
// that takes as long as the test wants.
type heldRecords struct {
	*storage.Local
	entered chan storage.Record
	release chan struct{}
	free    chan struct{} // closed: nothing waits any more
}

func (s *heldRecords) SaveRecord(r storage.Record) error {
	select {
	case s.entered <- r:
		select {
		case <-s.release:
		case <-s.free:
		}
	case <-s.free:
	}
	return s.Local.SaveRecord(r)
}

// TestEvictionOffLock: the records an eviction writes (the last use of the files kept,
// the evicted ones) are written after the manager's lock is released: while they wait
// on the disk, the state of every download is answered at once, the eviction shows in
// it, and a file that stays can be opened. The disk then says what the API said.
func TestEvictionOffLock(t *testing.T) {
	fakeClock(t)
	videos := []string{"a", "b", "c"}
	local := readyStore(t, videos...)
	store := &heldRecords{Local: local, entered: make(chan storage.Record), release: make(chan struct{}), free: make(chan struct{})}
	m := NewManager(local, Settings{MaxStorage: 1000}, zap.NewNop())
	defer func() {
		close(store.free) // nothing waits on the disk any more, the test failed or not
		m.Destruct()
	}()
	m.store = store
	m.Configure(Settings{MaxStorage: 150}) // a and b must go, c stays
	f, _, err := m.Open(context.Background(), storage.Key{Video: "c", Type: "default"})
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- f.Close() }() // the release runs the eviction pass

	var saved []string
	var opened []storage.File
	for {
		var r storage.Record
		select {
		case r = <-store.entered:
		case err := <-closed:
			if err != nil {
				t.Fatal(err)
			}
			closed = nil
		case <-time.After(10 * time.Second):
			t.Fatalf("no record write after %v", saved)
		}
		if closed == nil {
			break
		}
		saved = append(saved, r.Video+"="+string(r.Status))
		answered := make(chan string, 1)
		go func() {
			g, _, err := m.Open(context.Background(), storage.Key{Video: "c", Type: "default"})
			if err != nil {
				t.Errorf("opening c: %v", err)
			} else {
				opened = append(opened, g) // closed at the end: a release writes too
			}
			answered <- statuses(m, videos...)
		}()
		select {
		case got := <-answered:
			if want := "a=evicted b=evicted c=ready"; got != want {
				t.Errorf("while %s/%s is written: %s, want %s", r.Video, r.Status, got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("State blocked while the record of %s (%s) is written", r.Video, r.Status)
		}
		store.release <- struct{}{}
	}
	t.Logf("records written: %v", saved)
	m.store = local // the writes of the releases below go through
	for _, g := range opened {
		g.Close()
	}
	recs, _ := local.Records()
	for _, r := range recs {
		if want := map[string]storage.Status{"a": storage.StatusError, "b": storage.StatusError, "c": storage.StatusReady}[r.Video]; r.Status != want {
			t.Errorf("record of %s on disk: %s, want %s", r.Video, r.Status, want)
		}
	}
	for _, v := range []string{"a", "b"} {
		if f, err := local.Open(storage.Key{Video: v, Type: "default"}); err == nil {
			f.Close()
			t.Errorf("the file of %s is still there", v)
		}
	}
}
