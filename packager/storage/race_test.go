package storage

import (
	"sync"
	"testing"
)

// TestFolderRace: a Delete of one type, which removes the video's folder when it is
// empty, races a SaveRecord or a Commit of the other type, which create it: neither
// fails, and what the save or the commit put there stays.
func TestFolderRace(t *testing.T) {
	s, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	audio, def := Key{Video: "v", Type: "audio"}, Key{Video: "v", Type: "default"}
	ops := map[string]func() error{
		"SaveRecord": func() error { return s.SaveRecord(Record{Video: "v", Type: "default"}) },
		"Commit":     func() error { return put(s, def, "mp4") },
	}
	failed := map[string]int{}
	const tries = 300
	for name, op := range ops {
		for range tries {
			if err := s.SaveRecord(Record{Video: "v", Type: "audio"}); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			var delErr, opErr error
			wg.Go(func() { <-start; delErr = s.Delete(audio) })
			wg.Go(func() { <-start; opErr = op() })
			close(start)
			wg.Wait()
			if delErr != nil {
				t.Fatalf("Delete: %v", delErr)
			}
			if opErr != nil {
				failed[name]++
				continue
			}
			if name == "SaveRecord" {
				if recs, _ := s.Records(); len(recs) != 1 || recs[0].Type != "default" {
					t.Fatalf("records after the race: %v", recs)
				}
			} else if f, err := s.Open(def); err != nil {
				t.Fatalf("the committed file: %v", err)
			} else {
				f.Close()
			}
			if err := s.Delete(def); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, n := range failed {
		t.Errorf("%s failed in %d of %d races with a Delete", name, n, tries)
	}
}
