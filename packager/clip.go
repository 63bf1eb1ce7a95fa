package packager

import "github.com/stream-downloads/caddy-stream-downloads/packager/mp4"

// Clips of stored files (docs/clips.md), as the handler serves them: the parsed sample
// tables of a file (ClipSource, cached by a ClipCache) cut into a Clip, whose Reader
// gives its bytes from the stored file.
type (
	ClipCache    = mp4.ClipCache
	ClipSource   = mp4.ClipSource
	Clip         = mp4.Clip
	SeekReaderAt = mp4.SeekReaderAt
)

// ErrClipRange is a clip interval outside the file, or empty.
var ErrClipRange = mp4.ErrClipRange

// NewClipCache returns a cache of up to maxBytes of parsed sample tables.
func NewClipCache(maxBytes int64) *ClipCache { return mp4.NewClipCache(maxBytes) }

// ErrNoSidecar: the file has no subtitle track of the sidecar's name.
var ErrNoSidecar = mp4.ErrNoSidecar
