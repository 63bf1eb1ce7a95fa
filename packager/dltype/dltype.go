// Package dltype is the table of download types: what each one is called in the API,
// the file it is delivered and stored as, its content type, and what media it keeps.
// It imports nothing of the module, so that both the packager and its store use it;
// the packager re-exports it (packager.Type, packager.ParseType), and the handler
// speaks only to the packager.
package dltype

import "strings"

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

// Parse returns the type named name ("default", "audio"), false when there is none.
// Parameterised types (720p, fr.vtt) are recognised here as they come.
func Parse(name string) (Type, bool) {
	for _, t := range fixed {
		if t.Name == name {
			return t, true
		}
	}
	return Type{}, false
}

// FromFile returns the type whose file is named file ("default.mp4", "audio.m4a"),
// false when there is none.
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

// Names lists the names of the fixed types: "default or audio".
func Names() string {
	names := make([]string, len(fixed))
	for i, t := range fixed {
		names[i] = t.Name
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
