package packager

import (
	"regexp"

	"github.com/stream-downloads/caddy-stream-downloads/packager/dltype"
	"github.com/stream-downloads/caddy-stream-downloads/packager/hls"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
)

// What the packager's callers (the handler) need of the rooms below it, under the
// packager's name: they import the packager alone.

// Type is a download type: its name in the API, the file it is delivered as, its
// content type, and what media it keeps. The table is dltype's, which the store shares.
type Type = dltype.Type

// Kind is what media a download type keeps.
type Kind = dltype.Kind

// The kinds of download types.
const (
	KindVideo = dltype.KindVideo // the video with its audio: an MP4
	KindAudio = dltype.KindAudio // the audio alone: an M4A
)

// The download types without a parameter.
var (
	// DefaultType ("default", default.mp4) is the type of a POST that names none.
	DefaultType = dltype.Default
	// AudioType is "audio", delivered as audio.m4a.
	AudioType = dltype.Audio
)

// MaxHeight bounds the N of a height type ("{N}p").
const MaxHeight = dltype.MaxHeight

// ParseType returns the download type named name ("default", "audio", a height such
// as "720p"), false when there is none.
func ParseType(name string) (Type, bool) { return dltype.Parse(name) }

// TypeFromFile returns the download type delivered as file ("default.mp4",
// "audio.m4a", "720p.mp4"), false when there is none.
func TypeFromFile(file string) (Type, bool) { return dltype.FromFile(file) }

// TypeNames lists the names of the download types for a message: "default, audio or a
// height such as 720p".
func TypeNames() string { return dltype.Names() }

// Key names one download: a video and the name of its type.
type Key = storage.Key

// Status is a download's status as the API shows it.
type Status = storage.Status

// The statuses of a download.
const (
	StatusInProgress = storage.StatusInProgress
	StatusReady      = storage.StatusReady
	StatusError      = storage.StatusError
)

// Record is what is kept of a download (State embeds it).
type Record = storage.Record

// File is a packaged file opened for delivery (Open); closing it ends the delivery.
type File = storage.File

// Errors of Create, CreateOnDemand and Open that come from the origin.
var (
	// ErrNotFound: the origin has no such video.
	ErrNotFound = hls.ErrNotFound
	// ErrLive: the origin's playlist is live (no EXT-X-ENDLIST).
	ErrLive = hls.ErrLive
)

// NoRenditionError is the error of a height type the stream has no rendition of that
// height or less for (it matches ErrNotFound too): it says which height was asked for
// and which the stream has, and names no URL.
type NoRenditionError = hls.NoRenditionError

var validID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// ValidID reports whether s may be a video id: 1 to 128 letters, digits, '-' and '_'.
// Every id is checked before it reaches a path, a URL or a bucket key.
func ValidID(s string) bool { return validID.MatchString(s) }

// validKey reports whether video and typ make a key this version knows.
func validKey(video, typ string) bool {
	_, ok := ParseType(typ)
	return ok && ValidID(video)
}
