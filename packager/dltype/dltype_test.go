package dltype

import "testing"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, file, ext, ctype string
		audio                  bool
		height                 int
	}{
		{"default", "default.mp4", ".mp4", "video/mp4", false, 0},
		{"audio", "audio.m4a", ".m4a", "audio/mp4", true, 0},
		{"720p", "720p.mp4", ".mp4", "video/mp4", false, 720},
		{"1080p", "1080p.mp4", ".mp4", "video/mp4", false, 1080},
		{"1p", "1p.mp4", ".mp4", "video/mp4", false, 1},
		{"8640p", "8640p.mp4", ".mp4", "video/mp4", false, 8640},
	} {
		typ, ok := Parse(tc.name)
		if !ok || typ.Name != tc.name || typ.FileName() != tc.file || typ.Ext != tc.ext || typ.ContentType != tc.ctype ||
			typ.AudioOnly() != tc.audio || typ.Height != tc.height {
			t.Errorf("Parse(%q) = %+v, %v", tc.name, typ, ok)
		}
		if got, ok := FromFile(tc.file); !ok || got != typ {
			t.Errorf("FromFile(%q) = %+v, %v; want %+v", tc.file, got, ok, typ)
		}
		if tc.height > 0 {
			if got, ok := Height(tc.height); !ok || got != typ {
				t.Errorf("Height(%d) = %+v, %v; want %+v", tc.height, got, ok, typ)
			}
		}
	}
	for _, name := range []string{"", "Default", "audio.m4a", "default.mp4", "720", "x",
		"p", "0p", "0720p", "-1p", "+1p", "720P", "720pp", "7 20p", "72.0p", "8641p", "99999p", "1e3p", "720p.mp4", "١p"} {
		if typ, ok := Parse(name); ok {
			t.Errorf("Parse(%q) = %+v, want none", name, typ)
		}
	}
	for _, file := range []string{"", "default", "default.m4a", "audio.mp4", ".mp4", "default.mp4.mp4", "x.mp4",
		"720p", "720p.m4a", "720.mp4", "0p.mp4", "720p.mp4.mp4", "p.mp4"} {
		if typ, ok := FromFile(file); ok {
			t.Errorf("FromFile(%q) = %+v, want none", file, typ)
		}
	}
	for _, n := range []int{-1, 0, 8641} {
		if typ, ok := Height(n); ok {
			t.Errorf("Height(%d) = %+v, want none", n, typ)
		}
	}
	if got := Names(); got != "default, audio or a height such as 720p" {
		t.Errorf("Names() = %q", got)
	}
}
