// Package storage keeps packaged files and their download records. The local disk is the
// first implementation; a shared S3 bucket (docs/spec.md §6) will be the second.
package storage

import (
	"errors"
	"io"
	"os"
	"time"
)

// ErrNotExist is returned when a record or a file is not stored.
var ErrNotExist = errors.New("not stored")

// Key names one download: a video and the name of a download type (dltype: "default",
// "audio").
type Key struct {
	Video string
	Type  string
}

// Status of a download, as the API shows it.
type Status string

const (
	StatusInProgress Status = "inprogress"
	StatusReady      Status = "ready"
	StatusError      Status = "error"
)

// Record is what is kept of a download between restarts.
type Record struct {
	Video  string `json:"video"`
	Type   string `json:"type"`
	Status Status `json:"status"`
	// Origin is the playlist URL resolved when the download was created, so a
	// restart packages the same source whatever the request placeholders were.
	Origin string `json:"origin"`
	// ErrorCode and ErrorText say why a run failed (status error).
	ErrorCode string `json:"error_code,omitempty"`
	ErrorText string `json:"error_text,omitempty"`
	// Size, ETag and Ready describe the packaged file (status ready).
	Size  int64     `json:"size,omitempty"`
	ETag  string    `json:"etag,omitempty"`
	Ready time.Time `json:"ready,omitzero"`
	// Notes say what the file lacks or changed without it being an error (a declared
	// track that carried nothing, frames that cannot be decoded left out, timestamps
	// rebased): the API shows them as messages.
	Notes []string `json:"notes,omitempty"`
	// LastUsed is when the file was last delivered (or became ready), as of the last
	// time it was saved: the recency that max_storage evicts by, least recent first.
	LastUsed time.Time `json:"last_used,omitzero"`
	// Created orders the records of a video.
	Created time.Time `json:"created"`
}

// Key returns the record's key.
func (r Record) Key() Key { return Key{Video: r.Video, Type: r.Type} }

// File is a packaged file opened for delivery.
type File interface {
	io.ReadSeekCloser
	Stat() (os.FileInfo, error)
}

// Staging is a packaged file being written. The MP4 writer writes anywhere in it (the
// media behind a reserved space, the header last, and it may move the media once) and
// reads back what it moves. A remote store stages on local disk and uploads at Commit.
type Staging interface {
	io.WriterAt
	io.ReaderAt
	// Truncate cuts (or extends) the staged file to size bytes.
	Truncate(size int64) error
	// Commit makes the staged bytes durable and the packaged file of its key,
	// atomically, replacing the one before; the staging is closed whatever it returns.
	Commit() error
	// Discard drops the staged bytes; after Commit it does nothing.
	Discard()
}

// Store keeps records and packaged files. Implementations are safe for concurrent use;
// keys are validated by the caller before they reach a Store.
type Store interface {
	// Records lists every stored record. Records that cannot be read are skipped and
	// reported through the returned error list, never fatal.
	Records() ([]Record, []error)
	// SaveRecord stores r atomically, replacing the record of the same key.
	SaveRecord(r Record) error
	// Delete removes the record and the packaged file of k.
	Delete(k Key) error
	// Remove removes the packaged file of k and keeps its record (eviction); a file
	// that is not there is no error.
	Remove(k Key) error
	// Stage starts a new packaged file for k. Nothing of it is seen until its Commit;
	// a run that fails Discards it.
	Stage(k Key) (Staging, error)
	// Open opens k's packaged file, or returns ErrNotExist.
	Open(k Key) (File, error)
}
