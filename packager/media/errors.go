package media

import (
	"errors"
	"fmt"
)

// The errors both demuxers return, so that the packager tells input it cannot use from
// input that is broken without knowing which demuxer read it.
var (
	// ErrUnsupportedCodec is matched (errors.Is) by every *UnsupportedCodecError.
	ErrUnsupportedCodec = errors.New("unsupported codec")
	// ErrMalformed is matched (errors.Is) by every *MalformedError: input that is not
	// valid in its container, or not valid H.264, HEVC or audio as a demuxer needs it.
	ErrMalformed = errors.New("malformed segment")
)

// UnsupportedCodecError reports an audio or video stream in a codec we cannot package.
type UnsupportedCodecError struct {
	// Codec is the human-readable codec name, e.g. "MPEG-2 video".
	Codec string
	// Declared says how the container declares it: "stream type 0x02",
	// `sample entry "ec-3"`; empty when it declares nothing (packed audio).
	Declared string
	// Video is true for a video stream.
	Video bool
}

func (e *UnsupportedCodecError) Error() string {
	declared := ""
	if e.Declared != "" {
		declared = " (" + e.Declared + ")"
	}
	return fmt.Sprintf("unsupported codec: %s%s; supported: %s", e.Codec, declared, Supported)
}

// Is makes errors.Is(err, ErrUnsupportedCodec) true.
func (e *UnsupportedCodecError) Is(target error) bool { return target == ErrUnsupportedCodec }

// MalformedError reports input a demuxer cannot read.
type MalformedError struct {
	// Container is what was being read: "MPEG-TS", "fMP4".
	Container string
	// Where names the part of the input: "segment 3", "init section".
	Where string
	// Seg is the index (from 0, in the order fed) of the segment the error is about: the
	// one before the segment being read when what it lost shows only in the next one;
	// -1 when the error is not about a segment.
	Seg int
	Err error
}

func (e *MalformedError) Error() string {
	return fmt.Sprintf("malformed %s %s: %v", e.Container, e.Where, e.Err)
}

// Unwrap makes errors.Is(err, ErrMalformed) true and gives the cause.
func (e *MalformedError) Unwrap() []error { return []error{ErrMalformed, e.Err} }

// Segment is Seg; the packager asks errors for it through an interface.
func (e *MalformedError) Segment() int { return e.Seg }
