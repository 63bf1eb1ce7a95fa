package packager

import "testing"

func TestLanguageKept(t *testing.T) {
	for _, c := range []struct {
		langs []string
		tag   string
		want  bool
	}{
		{nil, "", true},
		{nil, "fr", true},
		{[]string{"en"}, "en", true},
		{[]string{"en"}, "EN-gb", true},
		{[]string{"en"}, "eng", false},
		{[]string{"pt-BR"}, "pt", false},
		{[]string{"pt-BR"}, "pt-br", true},
		{[]string{"en", "fr"}, "fr-CA", true},
		{[]string{"en"}, "", false},
	} {
		if got := LanguageKept(c.langs, c.tag); got != c.want {
			t.Errorf("LanguageKept(%v, %q) = %v, want %v", c.langs, c.tag, got, c.want)
		}
	}
}
