package subtitles

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

func txt(s string) []byte { return TX3GText(s) }

func TestTX3GSamples(t *testing.T) {
	a := Cue{Start: ms(1000), End: ms(4000), Text: "A"}
	b := Cue{Start: ms(2000), End: ms(3000), Text: "B"}
	tests := []struct {
		name      string
		cues      []Cue
		timescale uint32
		want      []Sample
	}{
		{"no cues", nil, 1000, nil},
		{"only cues without duration", []Cue{{Start: ms(5), End: ms(5), Text: "x"}}, 1000, nil},
		{
			"gaps filled with empty samples",
			[]Cue{{Start: ms(1000), End: ms(3000), Text: "one"}, {Start: ms(5000), End: ms(7000), Text: "two\nlines"}},
			1000,
			[]Sample{{0, 1000, txt("")}, {1000, 2000, txt("one")}, {3000, 2000, txt("")}, {5000, 2000, txt("two\nlines")}},
		},
		{
			"cue at 0, back to back cues",
			[]Cue{{Start: 0, End: ms(1000), Text: "x"}, {Start: ms(1000), End: ms(1500), Text: "y"}},
			1000,
			[]Sample{{0, 1000, txt("x")}, {1000, 500, txt("y")}},
		},
		{
			"overlap: split at every boundary, texts in cue order",
			[]Cue{a, b},
			1000,
			[]Sample{{0, 1000, txt("")}, {1000, 1000, txt("A")}, {2000, 1000, txt("A\nB")}, {3000, 1000, txt("A")}},
		},
		{
			"overlap, cue order reversed",
			[]Cue{b, a},
			1000,
			[]Sample{{0, 1000, txt("")}, {1000, 1000, txt("A")}, {2000, 1000, txt("B\nA")}, {3000, 1000, txt("A")}},
		},
		{
			"same start, different ends",
			[]Cue{{Start: ms(0), End: ms(2000), Text: "long"}, {Start: ms(0), End: ms(1000), Text: "short"}},
			1000,
			[]Sample{{0, 1000, txt("long\nshort")}, {1000, 1000, txt("long")}},
		},
		{
			"before 0 clipped, wholly before 0 dropped",
			[]Cue{{Start: -ms(3000), End: -ms(2000), Text: "gone"}, {Start: -ms(500), End: ms(500), Text: "half"}},
			1000,
			[]Sample{{0, 500, txt("half")}},
		},
		{
			"rounded to the timescale; rounding to nothing dropped",
			[]Cue{{Start: 1234500 * time.Microsecond, End: ms(2000), Text: "r"}, {Start: 3000200 * time.Microsecond, End: 3000400 * time.Microsecond, Text: "tiny"}},
			1000,
			[]Sample{{0, 1235, txt("")}, {1235, 765, txt("r")}},
		},
		{
			"90 kHz timescale",
			[]Cue{{Start: time.Second / 3, End: time.Second, Text: "t"}},
			90000,
			[]Sample{{0, 30000, txt("")}, {30000, 60000, txt("t")}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := TX3GSamples(tc.cues, tc.timescale)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("samples:\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestTX3GSamplesErrors(t *testing.T) {
	if _, err := TX3GSamples([]Cue{{End: time.Second, Text: "x"}}, 0); err == nil {
		t.Error("no error for timescale 0")
	}
	far := []Cue{{Start: 50 * 24 * time.Hour, End: 50*24*time.Hour + time.Second, Text: "x"}}
	if _, err := TX3GSamples(far, 1000); err == nil || !strings.Contains(err.Error(), "32-bit duration") {
		t.Errorf("error %v for a gap over 2^32 ticks", err)
	}
}

func TestTX3GText(t *testing.T) {
	if got := TX3GText(""); !bytes.Equal(got, []byte{0, 0}) {
		t.Errorf("empty: % x", got)
	}
	if got := TX3GText("hé"); !bytes.Equal(got, []byte{0, 3, 'h', 0xc3, 0xa9}) {
		t.Errorf("hé: % x", got)
	}
	long := strings.Repeat("é", 40000) // 80000 bytes: cut at 65534, a character boundary
	got := TX3GText(long)
	if n := binary.BigEndian.Uint16(got); n != 65534 || len(got) != 65536 || !strings.HasPrefix(long, string(got[2:])) {
		t.Errorf("long text: length field %d, %d bytes", n, len(got))
	}
}

func TestTX3GSampleEntry(t *testing.T) {
	// Hand-derived from 3GPP TS 26.245 §5.16 and ffmpeg's movtextenc.c.
	want := "00000040" + hex.EncodeToString([]byte("tx3g")) + "000000000000" + "0001" +
		"00000000" + "01" + "ff" + "00000000" + // displayFlags, justification, background
		"0000000000000000" + // default text box
		"0000" + "0000" + "0001" + "00" + "12" + "ffffffff" + // style record
		"00000012" + hex.EncodeToString([]byte("ftab")) + "0001" + "0001" + "05" + hex.EncodeToString([]byte("Serif"))
	got := TX3GSampleEntry()
	if hex.EncodeToString(got) != want {
		t.Fatalf("entry\n got %x\nwant %s", got, want)
	}
	got[0] = 0xAA
	if TX3GSampleEntry()[0] != 0 {
		t.Error("TX3GSampleEntry shares its bytes")
	}
	// mp4ff does not know tx3g: it must read it as one well-formed box.
	box, err := mp4.DecodeBox(0, bytes.NewReader(TX3GSampleEntry()))
	if err != nil {
		t.Fatal(err)
	}
	if box.Type() != "tx3g" || box.Size() != 64 {
		t.Errorf("mp4ff read %s of %d bytes", box.Type(), box.Size())
	}
}

// TestTX3GWithFFmpeg writes the samples and the sample entry into a minimal
// MP4 and has ffmpeg read the subtitles back, as the conformance suite will
// (`ffmpeg -i out.mp4 -map 0:s:0 out.vtt`).
func TestTX3GWithFFmpeg(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("no ffmpeg")
	}
	data, err := os.ReadFile("testdata/apple_map.vtt")
	if err != nil {
		t.Fatal(err)
	}
	cues, err := ParseSegment(data, 900000+9000) // media starts 0.1 s after MPEGTS
	if err != nil {
		t.Fatal(err)
	}
	cues = append(cues, Cue{Start: ms(11000), End: ms(13000), Text: "overlap"})
	samples, err := TX3GSamples(Normalize(cues), 1000)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "sub.mp4")
	if err := os.WriteFile(file, testMP4(samples, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ffmpeg, "-v", "error", "-i", file, "-map", "0:s:0", "-f", "webvtt", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	want := "WEBVTT\n\n" +
		"00:09.900 --> 00:11.000\nHi & welcome\nsecond\u00a0line\n\n" +
		"00:11.000 --> 00:12.400\nHi & welcome\nsecond\u00a0line\noverlap\n\n" +
		"00:12.400 --> 00:13.000\noverlap\n<music> \u200eok\n\n" +
		"00:13.000 --> 00:13.900\n<music> \u200eok\n"
	if string(out) != want {
		t.Errorf("ffmpeg read back\n%q\nwant\n%q", out, want)
	}
}

// box and u32 build the small MP4 files of these tests.
var (
	box = testutil.Box
	u32 = testutil.U32
)

// testMP4 is the smallest progressive MP4 with one tx3g track holding
// samples, in one chunk, as ffmpeg's movenc lays out a subtitle track.
func testMP4(samples []Sample, timescale uint32) []byte {
	var duration uint32
	var stsz, stts, mdat []byte
	for _, s := range samples {
		duration += s.Duration
		stsz = append(stsz, u32(uint32(len(s.Data)))...)
		stts = append(stts, u32(1, s.Duration)...)
		mdat = append(mdat, s.Data...)
	}
	n := uint32(len(samples))
	matrix := u32(0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
	ftyp := box("ftyp", []byte("isom"), u32(0x200), []byte("isomiso2mp41"))
	build := func(chunkOffset uint32) []byte {
		mvhd := box("mvhd", u32(0, 0, 0, timescale, duration, 0x10000), []byte{1, 0, 0, 0}, make([]byte, 8), matrix, make([]byte, 24), u32(2))
		tkhd := box("tkhd", u32(3, 0, 0, 1, 0, duration, 0, 0, 0, 0), matrix, u32(0, 0))
		eng := uint32(('e'-0x60)<<10 | ('n'-0x60)<<5 | ('g' - 0x60))
		mdhd := box("mdhd", u32(0, 0, 0, timescale, duration, eng<<16))
		hdlr := box("hdlr", u32(0, 0), []byte("sbtl"), make([]byte, 12), []byte("SubtitleHandler\x00"))
		dinf := box("dinf", box("dref", u32(0, 1), box("url ", u32(1))))
		stbl := box("stbl",
			box("stsd", u32(0, 1), TX3GSampleEntry()),
			box("stts", u32(0, n), stts),
			box("stsc", u32(0, 1, 1, n, 1)),
			box("stsz", u32(0, 0, n), stsz),
			box("stco", u32(0, 1, chunkOffset)))
		minf := box("minf", box("nmhd", u32(0)), dinf, stbl)
		return box("moov", mvhd, box("trak", tkhd, box("mdia", mdhd, hdlr, minf)))
	}
	moov := build(0)
	moov = build(uint32(len(ftyp) + len(moov) + 8))
	return bytes.Join([][]byte{ftyp, moov, box("mdat", mdat)}, nil)
}
