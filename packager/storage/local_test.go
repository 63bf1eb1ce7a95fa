package storage

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestLocal(t *testing.T) {
	dir := t.TempDir()
	// A crash left a temp file: opening the store removes it.
	if err := os.MkdirAll(filepath.Join(dir, ".tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".tmp", "v.default-123"), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, ".tmp")); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}

	k := Key{Video: "v1", Type: "default"}
	rec := Record{Video: "v1", Type: "default", Status: StatusReady, Origin: "http://o/v1.m3u8",
		Size: 4, ETag: `"e"`, Ready: time.Unix(1700000000, 0).UTC(), Created: time.Unix(1690000000, 0).UTC()}
	if err := s.SaveRecord(rec); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(k); !errors.Is(err, ErrNotExist) {
		t.Errorf("Open before Commit: %v, want ErrNotExist", err)
	}
	if err := put(s, k, "mp4!"); err != nil {
		t.Fatal(err)
	}
	f, err := s.Open(k)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != "mp4!" {
		t.Errorf("file holds %q", b)
	}

	// A corrupted record and a record under the wrong name are skipped and reported.
	for name, content := range map[string]string{
		"default.json": "{not json",
		"audio.json":   `{"video":"v1","type":"default"}`,
	} {
		p := filepath.Join(dir, "v2", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	recs, errs := s.Records()
	if !reflect.DeepEqual(recs, []Record{rec}) {
		t.Errorf("records %+v, want %+v", recs, []Record{rec})
	}
	if len(errs) != 2 {
		t.Errorf("errors %v, want 2", errs)
	}

	if err := s.Delete(k); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "v1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("video folder left after its last download was deleted: %v", err)
	}
	if err := s.Delete(k); err != nil {
		t.Errorf("deleting twice: %v", err)
	}
}
