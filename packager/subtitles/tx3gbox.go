package subtitles

// tx3gDescription is the body of the TextSampleEntry after the
// SampleEntry header (3GPP TS 26.245 §5.16), byte for byte the fixed default
// style of ffmpeg's mov_text encoder (libavcodec/movtextenc.c,
// mov_text_encode_init), which libavformat/movenc.c writes after the header
// (mov_write_subtitle_tag): bottom-centred text, transparent background, an
// empty default text box (the whole track area), white 18-point text in
// font 1, and a font table naming font 1 "Serif".
var tx3gDescription = []byte{
	0x00, 0x00, 0x00, 0x00, // displayFlags
	0x01,                   // horizontal-justification: centre
	0xFF,                   // vertical-justification: bottom (-1)
	0x00, 0x00, 0x00, 0x00, // background-color-rgba
	// BoxRecord default-text-box: top, left, bottom, right
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	// StyleRecord default-style
	0x00, 0x00, // startChar
	0x00, 0x00, // endChar
	0x00, 0x01, // font-ID
	0x00,                   // face-style-flags
	0x12,                   // font-size: 18
	0xFF, 0xFF, 0xFF, 0xFF, // text-color-rgba: opaque white
	// FontTableBox
	0x00, 0x00, 0x00, 0x12, 'f', 't', 'a', 'b',
	0x00, 0x01, // entry-count
	0x00, 0x01, // font-ID
	0x05, 'S', 'e', 'r', 'i', 'f', // font-name-length, font-name
}

// TX3GSampleEntry returns the bytes of a complete `tx3g` sample entry box,
// for the `stsd` of a timed text track (subtitles, or a QuickTime chapter
// track): size, 'tx3g', six reserved bytes, data_reference_index 1, then the
// text description ffmpeg writes. It is 64 bytes long; every call returns a
// fresh slice.
func TX3GSampleEntry() []byte {
	size := 8 + 8 + len(tx3gDescription)
	b := make([]byte, 0, size)
	b = append(b, byte(size>>24), byte(size>>16), byte(size>>8), byte(size))
	b = append(b, 't', 'x', '3', 'g')
	b = append(b, 0, 0, 0, 0, 0, 0) // reserved
	b = append(b, 0, 1)             // data_reference_index
	return append(b, tx3gDescription...)
}
