package storage

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// put stores data as k's packaged file through a staging.
func put(s Store, k Key, data string) error {
	st, err := s.Stage(k)
	if err != nil {
		return err
	}
	defer st.Discard()
	if _, err := st.WriteAt([]byte(data), 0); err != nil {
		return err
	}
	return st.Commit()
}

// TestStaging: a staged file is written at any offset, read back, cut shorter; nothing
// of it shows before Commit; Commit publishes it, Discard leaves nothing, and a staging
// is used once.
func TestStaging(t *testing.T) {
	dir := t.TempDir()
	s, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	k := Key{Video: "v", Type: "default"}
	tmpFiles := func() int {
		left, _ := os.ReadDir(filepath.Join(dir, ".tmp"))
		return len(left)
	}

	st, err := s.Stage(k)
	if err != nil {
		t.Fatal(err)
	}
	// The media behind a reserve, the header last, then a move that shortens the file.
	for _, w := range []struct {
		off  int64
		data string
	}{{8, "media..."}, {0, "header.."}} {
		if _, err := st.WriteAt([]byte(w.data), w.off); err != nil {
			t.Fatal(err)
		}
	}
	b := make([]byte, 8)
	if _, err := st.ReadAt(b, 8); err != nil || string(b) != "media..." {
		t.Fatalf("ReadAt: %q, %v", b, err)
	}
	if err := st.Truncate(13); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(k); !errors.Is(err, ErrNotExist) {
		t.Errorf("Open before Commit: %v, want ErrNotExist", err)
	}
	if err := st.Commit(); err != nil {
		t.Fatal(err)
	}
	st.Discard() // after Commit: nothing
	if err := st.Commit(); err == nil {
		t.Error("a second Commit: no error")
	}
	f, err := s.Open(k)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if string(got) != "header..media" {
		t.Errorf("file holds %q", got)
	}
	if n := tmpFiles(); n != 0 {
		t.Errorf("%d temp files left after Commit", n)
	}

	// A discarded staging leaves no temp file and the file before it in place.
	st, err = s.Stage(k)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.WriteAt([]byte("other"), 0); err != nil {
		t.Fatal(err)
	}
	st.Discard()
	if err := st.Commit(); err == nil {
		t.Error("Commit after Discard: no error")
	}
	if n := tmpFiles(); n != 0 {
		t.Errorf("%d temp files left after Discard", n)
	}
	f, err = s.Open(k)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(f)
	f.Close()
	if string(got) != "header..media" {
		t.Errorf("after a discarded staging the file holds %q", got)
	}
}
