package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/stream-downloads/caddy-stream-downloads/packager/dltype"
)

// Local stores files and records in a directory:
//
//	<dir>/<video>/<type>.mp4   packaged files, named as delivered (dltype: audio.m4a)
//	<dir>/<video>/<type>.json  records
//	<dir>/.tmp/                files being written; emptied at start
//
// The operations that create or remove a video's folder (SaveRecord, Commit, Delete)
// are serialized per video: a Delete of one type removes the folder when it is
// empty, which it is between another type's MkdirAll and rename, and that rename would
// then fail.
type Local struct {
	dir string

	mu     sync.Mutex
	videos map[string]*videoLock // of the videos with an operation under way
}

// videoLock serializes the folder operations of one video.
type videoLock struct {
	sync.Mutex
	users int // holding or waiting; the entry goes when it drops to 0
}

// lockVideo takes video's lock and returns its release.
func (l *Local) lockVideo(video string) (unlock func()) {
	l.mu.Lock()
	if l.videos == nil {
		l.videos = make(map[string]*videoLock)
	}
	v := l.videos[video]
	if v == nil {
		v = new(videoLock)
		l.videos[video] = v
	}
	v.users++
	l.mu.Unlock()
	v.Lock()
	return func() {
		v.Unlock()
		l.mu.Lock()
		if v.users--; v.users == 0 {
			delete(l.videos, video)
		}
		l.mu.Unlock()
	}
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
	name := k.Type + dltype.Default.Ext // a type the table lacks (none reaches here)
	if t, ok := dltype.Parse(k.Type); ok {
		name = t.FileName()
	}
	return filepath.Join(l.dir, k.Video, name)
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
	// Written and synced in .tmp first, outside the video's lock: only the folder and
	// the rename need it.
	f, err := os.CreateTemp(filepath.Join(l.dir, ".tmp"), "record-*")
	if err != nil {
		return fmt.Errorf("saving record: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		unlock := l.lockVideo(r.Video)
		err = os.MkdirAll(filepath.Join(l.dir, r.Video), 0o755)
		if err == nil {
			err = os.Rename(f.Name(), l.recordPath(r.Key()))
		}
		unlock()
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("saving record: %w", err)
	}
	return nil
}

// Delete implements Store.
func (l *Local) Delete(k Key) error {
	defer l.lockVideo(k.Video)()
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
	// No video lock: the folder stays, and evictions call this under the manager's lock.
	if err := os.Remove(l.filePath(k)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Stage implements Store: the file is written in .tmp and renamed into place.
func (l *Local) Stage(k Key) (Staging, error) {
	f, err := os.CreateTemp(filepath.Join(l.dir, ".tmp"), k.Video+"."+k.Type+"-*")
	if err != nil {
		return nil, err
	}
	return &localStaging{File: f, l: l, k: k}, nil
}

// localStaging is a file in .tmp. It is an *os.File, so that the writer can ask the
// kernel to start writing back (syscall.Conn) as it goes.
type localStaging struct {
	*os.File
	l    *Local
	k    Key
	done bool
}

// Commit implements Staging.
func (s *localStaging) Commit() error {
	if s.done {
		return errors.New("staging already committed or discarded")
	}
	err := s.Sync()
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.l.publish(s.k, s.Name())
	}
	s.done = true
	if err != nil {
		os.Remove(s.Name())
	}
	return err
}

// Discard implements Staging.
func (s *localStaging) Discard() {
	if s.done {
		return
	}
	s.done = true
	s.Close()
	os.Remove(s.Name())
}

// publish moves the complete file at tmp into place as k's packaged file.
func (l *Local) publish(k Key, tmp string) error {
	defer l.lockVideo(k.Video)()
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
