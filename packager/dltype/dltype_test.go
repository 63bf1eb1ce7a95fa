package dltype

import "testing"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, file, ext, ctype string
		audio                  bool
	}{
		{"default", "default.mp4", ".mp4", "video/mp4", false},
		{"audio", "audio.m4a", ".m4a", "audio/mp4", true},
	} {
		typ, ok := Parse(tc.name)
		if !ok || typ.Name != tc.name || typ.FileName() != tc.file || typ.Ext != tc.ext || typ.ContentType != tc.ctype || typ.AudioOnly() != tc.audio {
			t.Errorf("Parse(%q) = %+v, %v", tc.name, typ, ok)
		}
		if got, ok := FromFile(tc.file); !ok || got != typ {
			t.Errorf("FromFile(%q) = %+v, %v; want %+v", tc.file, got, ok, typ)
		}
	}
	for _, name := range []string{"", "Default", "audio.m4a", "default.mp4", "720", "x"} {
		if typ, ok := Parse(name); ok {
			t.Errorf("Parse(%q) = %+v, want none", name, typ)
		}
	}
	for _, file := range []string{"", "default", "default.m4a", "audio.mp4", ".mp4", "default.mp4.mp4", "x.mp4"} {
		if typ, ok := FromFile(file); ok {
			t.Errorf("FromFile(%q) = %+v, want none", file, typ)
		}
	}
	if got := Names(); got != "default or audio" {
		t.Errorf("Names() = %q", got)
	}
}
