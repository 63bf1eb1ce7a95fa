package chapters

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager/subtitles"
)

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

// appleDoc is shaped as Apple's HLS authoring examples write chapters.
const appleDoc = `[
  {
    "chapter": 1,
    "start-time": 0,
    "duration": 30.5,
    "titles": [
      {"language": "en", "title": "Opening"},
      {"language": "fr-FR", "title": "Ouverture"}
    ],
    "images": [
      {"image-category": "chapter", "pixel-width": 640, "pixel-height": 360, "url": "ch1.jpg"}
    ]
  },
  {
    "chapter": 2,
    "start-time": 30.5,
    "duration": 60.1,
    "titles": [
      {"language": "en", "title": "The  middle\npart"},
      {"language": "fr", "title": "Le milieu"}
    ]
  },
  {
    "chapter": 3,
    "start-time": 90.6,
    "duration": 9.4,
    "titles": []
  }
]`

func TestParse(t *testing.T) {
	tests := []struct {
		name, in, lang string
		want           []Chapter
	}{
		{
			name: "apple document, English",
			in:   appleDoc, lang: "en",
			want: []Chapter{
				{Start: 0, End: ms(30500), Title: "Opening"},
				{Start: ms(30500), End: ms(90600), Title: "The middle part"},
				{Start: ms(90600), End: ms(100000), Title: "Chapter 3"},
			},
		},
		{
			name: "French: exact tag, then primary subtag",
			in:   appleDoc, lang: "fr",
			want: []Chapter{
				{Start: 0, End: ms(30500), Title: "Ouverture"},
				{Start: ms(30500), End: ms(90600), Title: "Le milieu"},
				{Start: ms(90600), End: ms(100000), Title: "Chapter 3"},
			},
		},
		{
			name: "unknown language and none: the first title",
			in:   appleDoc, lang: "de",
			want: []Chapter{
				{Start: 0, End: ms(30500), Title: "Opening"},
				{Start: ms(30500), End: ms(90600), Title: "The middle part"},
				{Start: ms(90600), End: ms(100000), Title: "Chapter 3"},
			},
		},
		{
			name: "case-insensitive exact match wins over primary subtag",
			in:   `[{"start-time": 1, "duration": 1, "titles": [{"language": "en-GB", "title": "GB"}, {"language": "EN-us", "title": "US"}]}]`,
			lang: "en-US",
			want: []Chapter{{Start: time.Second, End: 2 * time.Second, Title: "US"}},
		},
		{
			name: "unsorted, overlapping, no durations, BOM",
			in: "\uFEFF" + `[{"chapter": 2, "start-time": 10, "duration": 100, "titles": [{"title": "b"}]},
				{"chapter": 1, "start-time": 0, "titles": [{"title": "a"}]},
				{"chapter": 3, "start-time": 20, "titles": [{"title": "c"}], "unknown": {"x": [1]}}]`,
			want: []Chapter{
				{Start: 0, End: 10 * time.Second, Title: "a"},
				{Start: 10 * time.Second, End: 20 * time.Second, Title: "b"},
				{Start: 20 * time.Second, End: 20 * time.Second, Title: "c"},
			},
		},
		{
			name: "fractions rounded to the microsecond",
			in:   `[{"start-time": 0.1, "duration": 0.2, "titles": [{"title": "x"}]}]`,
			want: []Chapter{{Start: ms(100), End: ms(300), Title: "x"}},
		},
		{
			name: "chapter number names an untitled chapter",
			in:   `[{"chapter": 7, "start-time": 0, "duration": 1, "titles": [{"language": "en", "title": "  "}]}]`,
			want: []Chapter{{Start: 0, End: time.Second, Title: "Chapter 7"}},
		},
		{name: "empty array", in: ` [ ] `, want: []Chapter{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.in), tc.lang)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	many := "[" + strings.Repeat(`{"start-time": 0},`, MaxChapters) + `{"start-time": 0}]`
	tests := []struct{ name, in, want string }{
		{"not JSON", `chapters`, "chapters: not JSON"},
		{"object", `{"chapters": []}`, "chapters: the document is not a JSON array"},
		{"truncated", `[{"start-time": 0}`, "chapters: after chapter 1"},
		{"trailing data", `[] []`, "chapters: data after the JSON array"},
		{"not an object", `[1]`, "chapters: chapter 1: json: cannot unmarshal number"},
		{"start-time a string", `[{"start-time": "0"}]`, "chapters: chapter 1: json: cannot unmarshal string"},
		{"no start-time", `[{"start-time": 0}, {"duration": 1}]`, "chapters: chapter 2: no start-time"},
		{"negative start", `[{"start-time": -1}]`, "chapters: chapter 1: start-time -1 is not a number of seconds"},
		{"huge start", `[{"start-time": 1e300}]`, "chapters: chapter 1: start-time 1e+300 is not"},
		{"negative duration", `[{"start-time": 0, "duration": -0.5}]`, "chapters: chapter 1: duration -0.5"},
		{"same start", `[{"start-time": 5}, {"start-time": 1}, {"start-time": 5}]`, "chapters: chapters 1 and 3 both start at 5s"},
		{"long title", `[{"start-time": 0, "titles": [{"title": "` + strings.Repeat("x", MaxTitleLength+1) + `"}]}]`, "chapters: chapter 1: title of 1025 bytes"},
		{"too many", many, "chapters: more than 1000 chapters"},
		{"too big", "[" + strings.Repeat(" ", MaxJSONSize) + "]", "chapters: document of 1048578 bytes is over the limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.in), "en")
			if err == nil {
				t.Fatalf("no error, got %+v", got)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestChplBox(t *testing.T) {
	if ChplBox(nil) != nil {
		t.Error("a box for no chapters")
	}
	got := ChplBox([]Chapter{
		{Start: 0, End: time.Second, Title: "A"},
		{Start: 1500 * time.Millisecond, End: 2 * time.Second, Title: ""},
		{Start: time.Hour, End: time.Hour + 1, Title: strings.Repeat("z", 254) + "é"}, // 256 bytes: cut to 254
	})
	want := []byte{0, 0, 0, 0, 'c', 'h', 'p', 'l', 1, 0, 0, 0, 0, 0, 0, 0, 3}
	want = append(want, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'A')
	want = binary.BigEndian.AppendUint64(want, 15000000)
	want = append(want, 0)
	want = binary.BigEndian.AppendUint64(want, 36000000000)
	want = append(want, 254)
	want = append(want, strings.Repeat("z", 254)...)
	binary.BigEndian.PutUint32(want, uint32(len(want)))
	if !bytes.Equal(got, want) {
		t.Errorf("chpl\n got % x\nwant % x", got, want)
	}

	chs := make([]Chapter, 300)
	for i := range chs {
		chs[i] = Chapter{Start: time.Duration(i) * time.Second, Title: "t"}
	}
	b := ChplBox(chs)
	if b[16] != 255 || len(b) != 17+255*10 || int(binary.BigEndian.Uint32(b)) != len(b) {
		t.Errorf("300 chapters: count %d, %d bytes", b[16], len(b))
	}
}

func sample(dts int64, dur uint32, title string) subtitles.Sample {
	data := subtitles.TX3GText(title)
	if title != "" {
		data = append(data, encd...)
	}
	return subtitles.Sample{DTS: dts, Duration: dur, Data: data}
}

func TestTrackSamples(t *testing.T) {
	tests := []struct {
		name string
		chs  []Chapter
		want []subtitles.Sample
	}{
		{"none", nil, nil},
		{
			"from 0, last to its end",
			[]Chapter{{0, ms(1000), "a"}, {ms(1000), ms(2500), "b"}},
			[]subtitles.Sample{sample(0, 1000, "a"), sample(1000, 1500, "b")},
		},
		{
			"late first chapter, gap stretched, zero-length last",
			[]Chapter{{ms(500), ms(800), "a"}, {ms(1000), ms(2000), "b"}, {ms(3000), ms(3000), "c"}},
			[]subtitles.Sample{sample(0, 500, ""), sample(500, 500, "a"), sample(1000, 2000, "b"), sample(3000, 1, "c")},
		},
		{
			"chapter rounding to nothing",
			[]Chapter{{0, ms(1), "a"}, {1000 * time.Microsecond, 1200 * time.Microsecond, "tiny"}, {1200 * time.Microsecond, ms(5), "b"}},
			[]subtitles.Sample{sample(0, 1, "a"), sample(1, 4, "b")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := TrackSamples(tc.chs, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
	if _, err := TrackSamples([]Chapter{{0, 1, "a"}}, 0); err == nil {
		t.Error("no error for timescale 0")
	}
	if _, err := TrackSamples([]Chapter{{ms(5000), ms(6000), "a"}, {ms(1000), ms(2000), "b"}}, 1000); err == nil {
		t.Error("no error for unsorted chapters")
	}
	if _, err := TrackSamples([]Chapter{{0, 60 * 24 * time.Hour, "a"}}, 1000); err == nil {
		t.Error("no error for a sample over 2^32 ticks")
	}
}

// TestWithFFprobe writes the chapters into minimal MP4s, once as chpl and
// once as a chapter track, and has ffprobe read them back.
func TestWithFFprobe(t *testing.T) {
	ffprobe, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Skip("no ffprobe")
	}
	chs, err := Parse([]byte(appleDoc), "fr")
	if err != nil {
		t.Fatal(err)
	}
	samples, err := TrackSamples(chs, 1000)
	if err != nil {
		t.Fatal(err)
	}
	body := []subtitles.Sample{{DTS: 0, Duration: 100000, Data: subtitles.TX3GText("sub")}}
	files := map[string][]byte{
		"chpl":  testMP4(body, nil, ChplBox(chs)),
		"track": testMP4(body, samples, nil),
	}
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), name+".mp4")
			if err := os.WriteFile(file, data, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(ffprobe, "-v", "error", "-show_chapters", "-of", "json", file).CombinedOutput()
			if err != nil {
				t.Fatalf("ffprobe: %v\n%s", err, out)
			}
			var got struct {
				Chapters []struct {
					Start string `json:"start_time"`
					End   string `json:"end_time"`
					Tags  struct {
						Title string `json:"title"`
					} `json:"tags"`
				} `json:"chapters"`
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			want := []string{"0.000000-30.500000 Ouverture", "30.500000-90.600000 Le milieu", "90.600000-100.000000 Chapter 3"}
			var have []string
			for _, c := range got.Chapters {
				have = append(have, c.Start+"-"+c.End+" "+c.Tags.Title)
			}
			if !reflect.DeepEqual(have, want) {
				t.Errorf("ffprobe chapters\n%q\nwant\n%q", have, want)
			}
		})
	}
}

// box and u32 build the small MP4 files of these tests.
var (
	box = testutil.Box
	u32 = testutil.U32
)

// testMP4 is a minimal progressive MP4 (timescale 1000): track 1 a tx3g
// subtitle track holding body; when chapter is not empty, track 2 a disabled
// tx3g chapter track holding it, referenced from track 1 by `chap`; when
// udta is not nil, a moov/udta holding it.
func testMP4(body, chapter []subtitles.Sample, udta []byte) []byte {
	matrix := u32(0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
	ftyp := box("ftyp", []byte("isom"), u32(0x200), []byte("isomiso2mp41"))
	trak := func(id, flags uint32, handler string, samples []subtitles.Sample, offset uint32, tref []byte) []byte {
		var duration uint32
		var stsz, stts []byte
		for _, s := range samples {
			duration += s.Duration
			stsz = append(stsz, u32(uint32(len(s.Data)))...)
			stts = append(stts, u32(1, s.Duration)...)
		}
		n := uint32(len(samples))
		tkhd := box("tkhd", u32(flags, 0, 0, id, 0, duration, 0, 0, 0, 0), matrix, u32(0, 0))
		mdhd := box("mdhd", u32(0, 0, 0, 1000, duration, 0x15C70000)) // "eng"
		hdlr := box("hdlr", u32(0, 0), []byte(handler), make([]byte, 12), []byte("Handler\x00"))
		dinf := box("dinf", box("dref", u32(0, 1), box("url ", u32(1))))
		stbl := box("stbl",
			box("stsd", u32(0, 1), subtitles.TX3GSampleEntry()),
			box("stts", u32(0, n), stts),
			box("stsc", u32(0, 1, 1, n, 1)),
			box("stsz", u32(0, 0, n), stsz),
			box("stco", u32(0, 1, offset)))
		minf := box("minf", box("nmhd", u32(0)), dinf, stbl)
		return box("trak", tkhd, tref, box("mdia", mdhd, hdlr, minf))
	}
	var mdat1, mdat2 []byte
	for _, s := range body {
		mdat1 = append(mdat1, s.Data...)
	}
	for _, s := range chapter {
		mdat2 = append(mdat2, s.Data...)
	}
	build := func(base uint32) []byte {
		mvhd := box("mvhd", u32(0, 0, 0, 1000, 100000, 0x10000), []byte{1, 0, 0, 0}, make([]byte, 8), matrix, make([]byte, 24), u32(3))
		parts := [][]byte{mvhd}
		var tref []byte
		if len(chapter) > 0 {
			tref = box("tref", box("chap", u32(2)))
		}
		parts = append(parts, trak(1, 3, "sbtl", body, base, tref))
		if len(chapter) > 0 {
			parts = append(parts, trak(2, 0, "text", chapter, base+uint32(len(mdat1)), nil))
		}
		if udta != nil {
			parts = append(parts, box("udta", udta))
		}
		return box("moov", parts...)
	}
	moov := build(0)
	moov = build(uint32(len(ftyp) + len(moov) + 8))
	return bytes.Join([][]byte{ftyp, moov, box("mdat", mdat1, mdat2)}, nil)
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(appleDoc), "en")
	f.Add([]byte(`[{"start-time": 1e-9, "duration": 1e12, "titles": [{"language": "", "title": "\u0000"}]}]`), "")
	f.Add([]byte(`[{"chapter": -1, "start-time": 3}, {"start-time": 2.5, "duration": 0}]`), "x-y")
	f.Fuzz(func(t *testing.T, data []byte, lang string) {
		chs, err := Parse(data, lang)
		if err != nil {
			return
		}
		if len(chs) > MaxChapters {
			t.Fatalf("%d chapters", len(chs))
		}
		for i, c := range chs {
			if c.Start < 0 || c.End < c.Start || c.Title == "" || len(c.Title) > MaxTitleLength {
				t.Fatalf("chapter %d: %+v", i, c)
			}
			if i > 0 && (chs[i-1].Start >= c.Start || chs[i-1].End > c.Start) {
				t.Fatalf("chapters %d and %d out of order or overlapping: %+v", i-1, i, chs)
			}
		}
		b := ChplBox(chs)
		if len(chs) > 0 && (len(b) < 17 || int(binary.BigEndian.Uint32(b)) != len(b) || len(b) > 17+255*(9+255)) {
			t.Fatalf("chpl of %d bytes", len(b))
		}
		samples, err := TrackSamples(chs, 1000)
		if err != nil {
			return
		}
		var next int64
		for _, s := range samples {
			if s.DTS != next || s.Duration == 0 {
				t.Fatalf("samples not contiguous: %+v", samples)
			}
			next += int64(s.Duration)
		}
	})
}
