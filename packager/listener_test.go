package packager

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
)

// heard records what a Listener hears, as "ready v/default".
type heard struct {
	mu  sync.Mutex
	got []string
}

func (h *heard) add(s string) {
	h.mu.Lock()
	h.got = append(h.got, s)
	h.mu.Unlock()
}

func (h *heard) Ready(rec Record, _ time.Duration) { h.add("ready " + rec.Video + "/" + rec.Type) }
func (h *heard) Failed(rec Record, _ time.Duration) {
	h.add("failed " + rec.Video + "/" + rec.Type + " " + rec.ErrorCode)
}
func (h *heard) Deleted(k Key) { h.add("deleted " + k.Video + "/" + k.Type) }

func (h *heard) list() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

// TestListener: the newest config's Listener hears each run's outcome once, and each
// deleted download.
func TestListener(t *testing.T) {
	o := newDemo(t, "ok", "broken")
	if err := os.Remove(filepath.Join(o.Dir, "broken", "240p", "seg_001.ts")); err != nil {
		t.Fatal(err)
	}
	store, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(store, Settings{MaxJobs: 1}, zap.NewNop())
	defer m.Destruct()
	var old, h heard
	m.Configure(Settings{MaxJobs: 1, Listener: &old})
	m.Configure(Settings{MaxJobs: 1, Listener: &h})
	create(t, m, o, "ok")
	create(t, m, o, "broken")
	if _, err := m.Delete(context.Background(), "ok"); err != nil {
		t.Fatal(err)
	}
	want := []string{"ready ok/default", "failed broken/default origin_error", "deleted ok/default"}
	if got := h.list(); !slices.Equal(got, want) {
		t.Errorf("heard %q, want %q", got, want)
	}
	if got := old.list(); len(got) > 0 {
		t.Errorf("the older config's listener heard %q", got)
	}
}

// TestFleetListener: in a fleet, only the instance that publishes hears the run's outcome,
// and only the one that deletes hears the deletion.
func TestFleetListener(t *testing.T) {
	o := newDemo(t, "v")
	ms, _ := fleetOf(t, 3, Settings{MaxJobs: 1})
	hs := make([]*heard, len(ms))
	for i, m := range ms {
		hs[i] = new(heard)
		m.Configure(Settings{MaxJobs: 1, Listener: hs[i]})
	}
	k := storage.Key{Video: "v", Type: "default"}
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Go(func() {
			if _, err := m.Create(context.Background(), k, o.URL+"/v/master.m3u8"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, m := range ms {
		waitFor(t, m, k)
	}
	if _, err := ms[2].Delete(context.Background(), "v"); err != nil {
		t.Fatal(err)
	}
	var all []string
	for i, h := range hs {
		for _, e := range h.list() {
			all = append(all, fmt.Sprintf("node%d %s", i, e))
		}
	}
	ready, deleted := 0, 0
	for _, e := range all {
		switch {
		case len(e) > 6 && e[6:] == "ready v/default":
			ready++
		case e == "node2 deleted v/default":
			deleted++
		default:
			t.Errorf("heard %q", e)
		}
	}
	if ready != 1 || deleted != 1 {
		t.Errorf("heard %q: want one ready, on the publisher, and one deleted, on node2", all)
	}
}
