package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Local stores files and records in a directory:
//
//	<dir>/<video>/<type>.mp4   packaged files (audio: .m4a)
//	<dir>/<video>/<type>.json  records
//	<dir>/.tmp/                files being written; emptied at start
type Local struct {
	dir string
}

// NewLocal opens (creating it if needed) the store in dir and removes temp files a
// crash left behind.
func NewLocal(dir string) (*Local, error) {
	tmp := filepath.Join(dir, ".tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("clearing temp files: %w", err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	return &Local{dir: dir}, nil
}

// Dir is the store's directory.
func (l *Local) Dir() string { return l.dir }

func (l *Local) filePath(k Key) string {
	ext := ".mp4"
	if k.Type == "audio" {
		ext = ".m4a"
	}
	return filepath.Join(l.dir, k.Video, k.Type+ext)
}

func (l *Local) recordPath(k Key) string {
	return filepath.Join(l.dir, k.Video, k.Type+".json")
}

// Records implements Store.
func (l *Local) Records() ([]Record, []error) {
	paths, err := filepath.Glob(filepath.Join(l.dir, "*", "*.json"))
	if err != nil {
		return nil, []error{err}
	}
	var recs []Record
	var errs []error
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var r Record
		if err := json.Unmarshal(b, &r); err != nil {
			errs = append(errs, fmt.Errorf("record %s: %w", p, err))
			continue
		}
		if want := (Key{filepath.Base(filepath.Dir(p)), strings.TrimSuffix(filepath.Base(p), ".json")}); r.Key() != want {
			errs = append(errs, fmt.Errorf("record %s: names %s/%s", p, r.Video, r.Type))
			continue
		}
		recs = append(recs, r)
	}
	return recs, errs
}

// SaveRecord implements Store.
func (l *Local) SaveRecord(r Record) error {
	b, err := json.MarshalIndent(r, "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(l.dir, r.Video), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Join(l.dir, ".tmp"), "record-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), l.recordPath(r.Key()))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("saving record: %w", err)
	}
	return nil
}

// Delete implements Store.
func (l *Local) Delete(k Key) error {
	// The record goes first: a crash in between leaves a file without a record (unseen,
	// and replaced if the video is packaged again), never a ready record without a file.
	for _, p := range []string{l.recordPath(k), l.filePath(k)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	// The video's folder goes when its last download does; failure means it is not empty.
	os.Remove(filepath.Join(l.dir, k.Video))
	return nil
}

// Remove implements Store.
func (l *Local) Remove(k Key) error {
	if err := os.Remove(l.filePath(k)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// TempPath implements Store.
func (l *Local) TempPath(k Key) (string, error) {
	f, err := os.CreateTemp(filepath.Join(l.dir, ".tmp"), k.Video+"."+k.Type+"-*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	return name, f.Close()
}

// Commit implements Store.
func (l *Local) Commit(k Key, tmp string) error {
	if err := os.MkdirAll(filepath.Join(l.dir, k.Video), 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, l.filePath(k)); err != nil {
		return err
	}
	return syncDir(filepath.Join(l.dir, k.Video))
}

// Open implements Store.
func (l *Local) Open(k Key) (File, error) {
	f, err := os.Open(l.filePath(k))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotExist
	}
	return f, err
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

var _ Store = (*Local)(nil)
