package testutil

import (
	"encoding/binary"
	"os"
	"testing"
)

// childBoxes splits b (the payload of a container box, or a whole file) into boxes: each
// one's type and payload.
func childBoxes(t testing.TB, b []byte) []struct {
	typ     string
	payload []byte
} {
	t.Helper()
	var out []struct {
		typ     string
		payload []byte
	}
	for len(b) >= 8 {
		size, hdr := uint64(binary.BigEndian.Uint32(b)), uint64(8)
		switch size {
		case 0:
			size = uint64(len(b))
		case 1:
			if len(b) < 16 {
				t.Fatalf("box %q: largesize cut off", b[4:8])
			}
			size, hdr = binary.BigEndian.Uint64(b[8:16]), 16
		}
		if size < hdr || size > uint64(len(b)) {
			t.Fatalf("box %q of size %d in %d bytes", b[4:8], size, len(b))
		}
		out = append(out, struct {
			typ     string
			payload []byte
		}{string(b[4:8]), b[hdr:size]})
		b = b[size:]
	}
	return out
}

// child returns the payload of the first box of type typ in b (see childBoxes), or nil.
func child(t testing.TB, b []byte, typ string) []byte {
	t.Helper()
	for _, c := range childBoxes(t, b) {
		if c.typ == typ {
			return c.payload
		}
	}
	return nil
}

// SampleEntry returns the type and the payload of the (first) sample entry of the first
// track of an MP4 file whose handler is handler ("soun", "vide"); it fails the test when
// there is none.
func SampleEntry(t testing.TB, path, handler string) (string, []byte) {
	t.Helper()
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	moov := child(t, file, "moov")
	for _, trak := range childBoxes(t, moov) {
		if trak.typ != "trak" {
			continue
		}
		mdia := child(t, trak.payload, "mdia")
		hdlr := child(t, mdia, "hdlr")
		if len(hdlr) < 12 || string(hdlr[8:12]) != handler {
			continue
		}
		stsd := child(t, child(t, child(t, mdia, "minf"), "stbl"), "stsd")
		if len(stsd) < 8 {
			t.Fatalf("%s: %s track without a sample description", path, handler)
		}
		entries := childBoxes(t, stsd[8:]) // after version, flags and entry_count
		if len(entries) == 0 {
			t.Fatalf("%s: %s track with no sample entry", path, handler)
		}
		return entries[0].typ, entries[0].payload
	}
	t.Fatalf("%s has no %s track", path, handler)
	return "", nil
}

// ESDSObjectType returns the objectTypeIndication of the esds box of the first audio
// track's sample entry (mp4a) of an MP4 file: 0x40 AAC, 0x6B MPEG-1 audio (MP3, MP2),
// 0x69 MPEG-2 audio (MP3 and MP2 below 32 kHz). ffprobe does not show it.
func ESDSObjectType(t testing.TB, path string) byte {
	t.Helper()
	typ, entry := SampleEntry(t, path, "soun")
	if typ != "mp4a" {
		t.Fatalf("%s: audio sample entry %q, not mp4a", path, typ)
	}
	// AudioSampleEntry: 6 reserved, data_reference_index, then version (QuickTime sound
	// descriptions v1 and v2 are longer), …: 28 bytes in version 0.
	if len(entry) < 28 {
		t.Fatalf("%s: mp4a entry of %d bytes", path, len(entry))
	}
	skip := 28
	switch binary.BigEndian.Uint16(entry[8:10]) {
	case 1:
		skip += 16
	case 2:
		skip += 36
	}
	esds := child(t, entry[min(skip, len(entry)):], "esds")
	if len(esds) < 4 {
		t.Fatalf("%s: mp4a without an esds", path)
	}
	d := esds[4:] // after version and flags
	// descriptor reads a descriptor of tag at the start of d: its body.
	descriptor := func(d []byte, tag byte) []byte {
		if len(d) < 2 || d[0] != tag {
			t.Fatalf("%s: esds: descriptor tag %#x, want %#x", path, d[:min(1, len(d))], tag)
		}
		n, i := 0, 1
		for ; i < len(d) && i <= 4; i++ {
			n = n<<7 | int(d[i]&0x7f)
			if d[i]&0x80 == 0 {
				break
			}
		}
		if i+1+n > len(d) {
			t.Fatalf("%s: esds: descriptor %#x of %d bytes overruns", path, tag, n)
		}
		return d[i+1 : i+1+n]
	}
	es := descriptor(d, 0x03) // ES_Descriptor
	if len(es) < 3 {
		t.Fatalf("%s: esds: short ES_Descriptor", path)
	}
	flags, rest := es[2], es[3:]
	if flags&0x80 != 0 { // streamDependenceFlag
		rest = rest[min(2, len(rest)):]
	}
	if flags&0x40 != 0 && len(rest) > 0 { // URL_Flag
		rest = rest[min(1+int(rest[0]), len(rest)):]
	}
	if flags&0x20 != 0 { // OCRstreamFlag
		rest = rest[min(2, len(rest)):]
	}
	dc := descriptor(rest, 0x04) // DecoderConfigDescriptor
	if len(dc) < 1 {
		t.Fatalf("%s: esds: empty DecoderConfigDescriptor", path)
	}
	return dc[0]
}

// Box returns an ISO BMFF box of type typ holding the concatenated parts, for tests
// that build small MP4 files by hand.
func Box(typ string, parts ...[]byte) []byte {
	n := 8
	for _, p := range parts {
		n += len(p)
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(n))
	b = append(b, typ...)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// U32 returns vs as big-endian 32-bit values.
func U32(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}
