package packager

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
)

// TestLiveFile: a delivery reads what the job has written; ahead of it, it waits for
// the job while it writes, gives up when the job stalls (and does not wait again until
// it writes), or when it is too far ahead; once the job ends, it reads elsewhere.
func TestLiveFile(t *testing.T) {
	store, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Stage(storage.Key{Video: "v", Type: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Discard()
	lv := newLiveFile(st, [32]byte{})
	lv.stall = 20 * time.Millisecond
	ctx := context.Background()
	read := func(off int64, n int) ([]byte, bool) {
		t.Helper()
		b := make([]byte, n)
		got, ok, err := lv.read(ctx, b, off)
		if err != nil {
			t.Fatal(err)
		}
		return b[:got], ok
	}

	if _, err := lv.WriteAt([]byte("0123456789"), 100); err != nil {
		t.Fatal(err)
	}
	if b, ok := read(104, 100); !ok || string(b) != "456789" {
		t.Errorf("written bytes: %q %v, want the 6 written", b, ok)
	}
	// Ahead of the job: the read waits for its next write.
	done := make(chan []byte)
	go func() {
		b := make([]byte, 4)
		n, ok, err := lv.read(ctx, b, 112)
		if !ok || err != nil {
			t.Errorf("waiting read: %v %v", ok, err)
		}
		done <- b[:n]
	}()
	time.Sleep(5 * time.Millisecond) // let it wait (the test holds either way)
	if _, err := lv.WriteAt([]byte("abcdef"), 110); err != nil {
		t.Fatal(err)
	}
	if b := <-done; string(b) != "cdef" {
		t.Errorf("waiting read got %q", b)
	}
	// The job stalls: the read gives up, and the next does not wait.
	if _, ok := read(200, 4); ok {
		t.Error("a read ahead of a stalled job did not give up")
	}
	start := time.Now()
	if _, ok := read(200, 4); ok || time.Since(start) >= lv.stall {
		t.Errorf("a read after the stall: ok %v after %v, want at once elsewhere", ok, time.Since(start))
	}
	if _, err := lv.WriteAt(bytes.Repeat([]byte{'x'}, 100), 116); err != nil {
		t.Fatal(err)
	}
	if b, ok := read(200, 4); !ok || string(b) != "xxxx" {
		t.Errorf("after the job wrote again: %q %v", b, ok)
	}
	// Too far ahead: elsewhere at once.
	if _, ok := read(216+liveWait+1, 4); ok {
		t.Error("a read far ahead of the job waited for it")
	}
	lv.end()
	if _, ok := read(100, 4); ok {
		t.Error("a read after the job's end used the staging file")
	}
}
