package mp4

import "golang.org/x/text/language"

// A track's language (media.Track.Language, a BCP 47 tag from the playlist) goes into
// mdhd as an ISO 639-2/T code, and, when the tag says more than that code (a region, a
// script, or a two-letter code), whole into an elng box (ISO 14496-12 8.4.6) as well.

// iso639 is the ISO 639-2/T code of tag's language ("en-US" → "eng", "fr" → "fra"), and
// "und" when it is empty or not a known language.
func iso639(tag string) string {
	if tag == "" {
		return "und"
	}
	t, err := language.Parse(tag)
	if err != nil {
		return "und"
	}
	b, c := t.Base()
	if c != language.Exact {
		return "und"
	}
	code := b.ISO3()
	if len(code) != 3 {
		return "und"
	}
	for i := range 3 {
		if code[i] < 'a' || code[i] > 'z' {
			return "und"
		}
	}
	return code
}

// packLanguage is the 15-bit mdhd language field of an ISO 639-2/T code: three letters
// of 5 bits each, 'a' being 1.
func packLanguage(code string) uint16 {
	return uint16(code[0]-0x60)<<10 | uint16(code[1]-0x60)<<5 | uint16(code[2]-0x60)
}

// elngTag is the tag an elng box carries for tag: "" when mdhd's code says it all.
func elngTag(tag string) string {
	if tag == "" || tag == iso639(tag) {
		return ""
	}
	return tag
}
