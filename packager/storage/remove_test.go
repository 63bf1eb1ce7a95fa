package storage

import (
	"errors"
	"testing"
)

// TestRemove: Remove takes the packaged file and keeps the record; twice is no error.
func TestRemove(t *testing.T) {
	s, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	k := Key{Video: "v", Type: "audio"}
	if err := s.SaveRecord(Record{Video: "v", Type: "audio", Status: StatusReady}); err != nil {
		t.Fatal(err)
	}
	if err := put(s, k, "m4a"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Remove(k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Open(k); !errors.Is(err, ErrNotExist) {
		t.Errorf("Open after Remove: %v", err)
	}
	if recs, errs := s.Records(); len(recs) != 1 || len(errs) != 0 {
		t.Errorf("records after Remove: %v %v", recs, errs)
	}
}
