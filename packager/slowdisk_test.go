package packager

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
)

// slowStore stops every record save and commit of video "slow" until the test lets it
// go: a disk that takes as long as the test wants.
type slowStore struct {
	*storage.Local
	entered chan string   // the operation that is waiting
	release chan struct{} // lets it go
	free    chan struct{} // closed: nothing waits any more (the test failed)
}

func (s *slowStore) hold(op, video string) {
	if video != "slow" {
		return
	}
	select {
	case s.entered <- op:
		select {
		case <-s.release:
		case <-s.free:
		}
	case <-s.free:
	}
}

func (s *slowStore) SaveRecord(r storage.Record) error {
	s.hold("record", r.Video)
	return s.Local.SaveRecord(r)
}

func (s *slowStore) Stage(k storage.Key) (storage.Staging, error) {
	st, err := s.Local.Stage(k)
	if err != nil {
		return nil, err
	}
	return slowStaging{st, s, k.Video}, nil
}

// slowStaging holds its Commit as slowStore says.
type slowStaging struct {
	storage.Staging
	s     *slowStore
	video string
}

func (st slowStaging) Commit() error {
	st.s.hold("commit", st.video)
	return st.Staging.Commit()
}

// TestSlowDisk: while a job's record save or commit waits on the disk, the state of
// every download (that one too) is still answered at once; the outcome shows once its
// record is saved.
func TestSlowDisk(t *testing.T) {
	o := newDemo(t, "slow", "other")
	local, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := &slowStore{Local: local, entered: make(chan string), release: make(chan struct{}), free: make(chan struct{})}
	m := NewManager(store, Settings{MaxJobs: 2}, zap.NewNop())
	defer m.Destruct()
	if st := create(t, m, o, "other"); st.Status != storage.StatusReady {
		t.Fatalf("other: %+v", st)
	}

	slow := storage.Key{Video: "slow", Type: "default"}
	created := make(chan error, 1)
	go func() {
		_, err := m.Create(context.Background(), slow, o.URL+"/slow/master.m3u8")
		created <- err
	}()
	for i, want := range []string{"record", "commit", "record"} { // created, file in place, ready
		select {
		case op := <-store.entered:
			if op != want {
				t.Fatalf("the store got %s, want %s", op, want)
			}
		case <-time.After(time.Minute):
			t.Fatalf("no %s reached the store", want)
		}
		answered := make(chan string)
		go func() { answered <- statuses(m, "other", "slow") }()
		select {
		case got := <-answered:
			t.Logf("while the %s waits: %s", want, got)
			if i == 2 && got != "other=ready slow=inprogress" {
				t.Errorf("while the last record waits: %s; the outcome shows once it is saved", got)
			}
		case <-time.After(5 * time.Second):
			close(store.free) // so that the manager can stop
			t.Fatalf("State blocked while the store's %s waits", want)
		}
		store.release <- struct{}{}
	}
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if st, _ := m.Wait(ctx, slow); st.Status != storage.StatusReady {
		t.Fatalf("slow: %+v", st)
	}
	recs, _ := local.Records() // saved before the API said ready
	for _, r := range recs {
		if r.Status != storage.StatusReady {
			t.Errorf("record on disk: %+v", r)
		}
	}
}
