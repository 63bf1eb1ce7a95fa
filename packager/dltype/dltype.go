// Package dltype is the table of download types: what each one is called in the API,
// the file it is delivered and stored as, its content type, and what media it keeps.
// It imports nothing of the module, so that both the packager and its store use it;
// the packager re-exports it (packager.Type, packager.ParseType), and the handler
// speaks only to the packager.
package dltype

import (
	"strconv"
	"strings"
)

// Kind is what media a download type keeps.
type Kind int

const (
	// KindVideo keeps the video with its audio: an MP4.
	KindVideo Kind = iota
	// KindAudio keeps the audio alone: an M4A.
	KindAudio
)

// Type is one download type. Types are values: two equal Types are the same download
// type. A parameterised type (a height such as 720p, a subtitle sidecar such as fr.vtt)
// is a Type too, built by Parse from its name, with its parameter in a field of its own.
type Type struct {
	// Name is the type in the API and in keys and records: "default", "audio".
	Name string
	// Ext is the extension of its file, with the dot: ".mp4", ".m4a".
	Ext string
	// ContentType is the Content-Type of its file.
	ContentType string
	// Kind is what media it keeps.
	Kind Kind
	// Height is the rendition height of a height type ("720p": 720): the variant of
	// that height, or the nearest below it, never taller. 0 for every other type.
	Height int
}

// FileName is the name its file is delivered and stored as: "default.mp4".
func (t Type) FileName() string { return t.Name + t.Ext }

// AudioOnly reports whether the type keeps the audio alone.
func (t Type) AudioOnly() bool { return t.Kind == KindAudio }

// The download types without a parameter.
var (
	// Default is the video with its audio (MP4), the type of a POST that names none.
	Default = Type{Name: "default", Ext: ".mp4", ContentType: "video/mp4", Kind: KindVideo}
	// Audio is the audio alone (M4A).
	Audio = Type{Name: "audio", Ext: ".m4a", ContentType: "audio/mp4", Kind: KindAudio}
)

// fixed are the types without a parameter, in the order the API lists them.
var fixed = []Type{Default, Audio}

// Fixed returns the types without a parameter, in a new slice.
func Fixed() []Type { return append([]Type(nil), fixed...) }

// MaxHeight bounds the N of a height type: 8640 lines (16K) and no more.
const MaxHeight = 8640

// Parse returns the type named name ("default", "audio", or a height such as "720p":
// N followed by "p", N a positive integer of at most MaxHeight without leading
// zeros), false when there is none.
func Parse(name string) (Type, bool) {
	for _, t := range fixed {
		if t.Name == name {
			return t, true
		}
	}
	return parseHeight(name)
}

// Height returns the height type of n lines ("720p" for 720), false when n is not in
// 1…MaxHeight.
func Height(n int) (Type, bool) {
	if n < 1 || n > MaxHeight {
		return Type{}, false
	}
	return Type{Name: strconv.Itoa(n) + "p", Ext: ".mp4", ContentType: "video/mp4", Kind: KindVideo, Height: n}, true
}

// parseHeight returns the height type named name ("720p").
func parseHeight(name string) (Type, bool) {
	digits, ok := strings.CutSuffix(name, "p")
	if !ok || digits == "" || len(digits) > len(strconv.Itoa(MaxHeight)) || digits[0] == '0' {
		return Type{}, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return Type{}, false
		}
	}
	n, _ := strconv.Atoi(digits)
	return Height(n)
}

// FromFile returns the type whose file is named file ("default.mp4", "audio.m4a",
// "720p.mp4"), false when there is none.
func FromFile(file string) (Type, bool) {
	// The name is what precedes the extension; a name may hold dots of its own (fr.vtt
	// is a name and an extension alike), so every split is tried, the longest name first.
	for i := strings.LastIndexByte(file, '.'); i > 0; i = strings.LastIndexByte(file[:i], '.') {
		if t, ok := Parse(file[:i]); ok && t.FileName() == file {
			return t, true
		}
	}
	return Type{}, false
}

// Names lists the names of the types for a message: "default, audio or a height
// such as 720p".
func Names() string {
	names := make([]string, len(fixed))
	for i, t := range fixed {
		names[i] = t.Name
	}
	return strings.Join(names, ", ") + " or a height such as 720p"
}
