package streamdownloads_test

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// conformanceDir holds the streams made by testdata/conformance/make.sh, one folder per
// flavour, each with its entry point play.m3u8.
func conformanceDir(t *testing.T) string {
	return filepath.Join(testutil.RepoRoot(t), "testdata", "conformance")
}

// flavour is one stream of the conformance matrix and what the module must make of it.
type flavour struct {
	name string
	// source is what the default MP4 must match (for CompareWithSource), relative to the
	// flavour's folder: the variant the module must choose for a master playlist.
	// Empty for a flavour the module must refuse.
	source string
	// audio is what the M4A must match: "" for no audio download, "-" for a stream whose
	// audio download must end in error (no audio); a source with video is compared by its
	// audio alone.
	audio string
	// check replaces CompareWithSource for the default MP4 when set.
	check func(t *testing.T, mp4, source string) string
	// reason: the errorReasonText of a refused flavour must match it.
	reason *regexp.Regexp
	// code: the errorReasonCode of a refused flavour; "" means unsupported_input.
	code string
	// messages: the "messages" of the GET …/downloads answer, once the default download is
	// ready, joined by newlines, must match it.
	messages *regexp.Regexp
	// live: POST must answer 409.
	live bool
	// decrypt: the source is AES-128 encrypted; it is compared decrypted (ffmpeg will not
	// open a key file without a media extension).
	decrypt bool
	// pmt: what the PMT of seg_000.ts declares, as testutil.PMTString writes it: make.sh
	// wrote what README.md says (TestConformanceFixtures).
	pmt string
	// objectType: the esds object type the audio of the MP4 and M4A must have (MP3, MP2:
	// 0x6B, or 0x69 below 32 kHz); ffprobe does not show it.
	objectType byte
	// layout: the channel layout ffprobe must see in the MP4's and the M4A's audio
	// (CompareWithSource also wants the source's).
	layout string
}

var flavours = []flavour{
	{name: "ts-h264-aac", source: "hi/index.m3u8", audio: "hi/index.m3u8"},
	{name: "ts-hevc-aac", source: "play.m3u8", audio: "play.m3u8"},
	{name: "fmp4-h264-aac", source: "play.m3u8", audio: "play.m3u8"},
	{name: "fmp4-hevc-aac", source: "play.m3u8", audio: "play.m3u8"},
	{name: "separate-audio", source: "play.m3u8", audio: "audio.m3u8"},
	{name: "video-only", source: "play.m3u8", audio: "-"},
	{name: "audio-only", source: "play.m3u8", audio: "play.m3u8"},
	{name: "audio-only-fmp4", source: "play.m3u8", audio: "play.m3u8"},
	{name: "byterange-single-file", source: "play.m3u8", audio: "play.m3u8"},
	{name: "byterange-fmp4", source: "play.m3u8", audio: "play.m3u8"},
	{name: "aes128", source: "play.m3u8", audio: "play.m3u8", decrypt: true},
	{name: "aes128-no-iv", source: "play.m3u8", audio: "play.m3u8", decrypt: true},
	{name: "discontinuity", source: "reference.ffconcat", audio: "reference.ffconcat"},
	{name: "wrap", source: "play.m3u8", audio: "play.m3u8"},
	{name: "gap", source: "source.m3u8", audio: "source.m3u8"},
	{name: "aac-mono", source: "play.m3u8", audio: "play.m3u8"},
	{name: "aac-51", source: "play.m3u8", audio: "play.m3u8"},
	{name: "first-segment-mid-gop", source: "play.m3u8", audio: "play.m3u8", check: compareFromFirstKeyframe},
	// PES cut anywhere (internal/tsrecut): compared with the aligned segments they were
	// made from (TestRecutSameMP4 also wants the same bytes as from those).
	{name: "recut-fixed-h264", source: "source.m3u8", audio: "source.m3u8"},
	{name: "recut-apple-h264", source: "source.m3u8", audio: "source.m3u8"},
	{name: "recut-random-h264", source: "source.m3u8", audio: "source.m3u8"},
	{name: "recut-apple-hevc", source: "source.m3u8", audio: "source.m3u8"},
	{name: "empty-audio-pid", source: "source.m3u8", audio: "-",
		messages: regexp.MustCompile(`(?i)audio.*\b(no|never|without|empty)\b|\b(no|never|without|empty)\b.*audio`)},
	{name: "repeated-segments", source: "reference.ffconcat", audio: "reference.ffconcat"},
	{name: "stitched-forward", source: "reference.ffconcat", audio: "reference.ffconcat"},
	{name: "playlist-spellings", source: "../ts-h264-aac/hi/index.m3u8", audio: "../ts-h264-aac/hi/index.m3u8"},
	// Issue 11: every audio codec HLS allows, AV1 in fMP4, packed audio.
	{name: "ts-ac3", source: "play.m3u8", audio: "play.m3u8", pmt: `0x1b, 0x81 05"AC-3"`, layout: "5.1(side)"},
	{name: "ts-ac3-dvb", source: "play.m3u8", audio: "play.m3u8", pmt: `0x1b, 0x06 05"AC-3" 6a00`, layout: "5.1(side)"},
	{name: "ts-eac3", source: "play.m3u8", audio: "play.m3u8", pmt: `0x1b, 0x87 05"EAC3"`, layout: "5.1(side)"},
	{name: "ts-eac3-dvb", source: "play.m3u8", audio: "play.m3u8", pmt: `0x1b, 0x06 05"EAC3" 7a00`, layout: "5.1(side)"},
	{name: "ts-mp3", source: "play.m3u8", audio: "play.m3u8", pmt: "0x1b, 0x03", objectType: 0x6b},
	{name: "ts-mp2", source: "play.m3u8", audio: "play.m3u8", pmt: "0x1b, 0x03", objectType: 0x6b},
	{name: "ts-mp3-lsf", source: "play.m3u8", audio: "play.m3u8", pmt: "0x04", objectType: 0x69},
	{name: "ts-opus", source: "play.m3u8", audio: "play.m3u8", pmt: `0x1b, 0x06 05"Opus" 7f8002`, layout: "stereo"},
	{name: "ts-opus-51", source: "play.m3u8", audio: "play.m3u8", pmt: `0x06 05"Opus" 7f8006`, layout: "5.1"},
	{name: "fmp4-ac3", source: "play.m3u8", audio: "play.m3u8", layout: "5.1(side)"},
	{name: "fmp4-eac3", source: "play.m3u8", audio: "play.m3u8", layout: "5.1(side)"},
	{name: "fmp4-mp3", source: "play.m3u8", audio: "play.m3u8", objectType: 0x6b},
	{name: "fmp4-opus", source: "play.m3u8", audio: "play.m3u8", layout: "stereo"},
	{name: "fmp4-av1", source: "play.m3u8", audio: "play.m3u8"},
	// Packed audio: compared with reference.ffconcat, the same segments read one by one
	// (ffmpeg's HLS reader mistimes packed audio in small segments, and will not read .ec3).
	{name: "packed-aac", source: "reference.ffconcat", audio: "reference.ffconcat"},
	{name: "packed-ac3", source: "reference.ffconcat", audio: "reference.ffconcat", layout: "5.1(side)"},
	{name: "packed-eac3", source: "reference.ffconcat", audio: "reference.ffconcat", layout: "5.1(side)"},
	{name: "packed-mp3", source: "reference.ffconcat", audio: "reference.ffconcat", objectType: 0x6b},
	{name: "packed-misnamed", source: "reference.ffconcat", audio: "reference.ffconcat"},
	// The same video and AAC frames at the same times as ts-h264-aac/hi (make.sh checks).
	{name: "packed-rendition", source: "../ts-h264-aac/hi/index.m3u8", audio: "../ts-h264-aac/hi/index.m3u8"},
	// Its audio download: TestLanguages.
	{name: "multi-language", source: "play.m3u8", check: func(t *testing.T, mp4, _ string) string {
		checkMultiLanguage(t, mp4, "default")
		return "three audio languages, three subtitle tracks, chapters"
	}},
	{name: "sample-aes", reason: regexp.MustCompile(`SAMPLE-AES`)},
	{name: "mpeg2-video", reason: regexp.MustCompile(`(?i)mpeg-?2`)},
	{name: "ts-dts", reason: regexp.MustCompile(`DTS`), pmt: "0x1b, 0x82"},
	{name: "ts-latm", reason: regexp.MustCompile(`LATM`), pmt: "0x1b, 0x11"},
	{name: "iframes-only", reason: regexp.MustCompile(`(?i)i-frame`)},
	{name: "lost-packets", reason: regexp.MustCompile(`seg_001`), code: "malformed_segment"},
	{name: "short-segment", reason: regexp.MustCompile(`seg_001`), code: "malformed_segment"},
	{name: "live", live: true},
}

// TestConformance packages every stream of testdata/conformance through a real Caddy and
// compares each MP4 (and M4A) with its source; the unsupported ones must end in a clear
// error and no file.
func TestConformance(t *testing.T) {
	streams := filepath.Join(conformanceDir(t), "streams")
	checkFlavourTable(t, streams)
	origin := testutil.NewOrigin(t, streams)
	e := startEdge(t, origin.URL+"/{video_id}/play.m3u8", "")

	// Start everything first: the jobs run (max_jobs at once) while earlier ones are checked.
	posted, postErr := map[string]int{}, map[string]string{} // status and error of each POST
	for _, f := range flavours {
		types := []string{"default"}
		if f.audio != "" {
			types = append(types, "audio")
		}
		for _, typ := range types {
			code, env := e.call("POST", "/acct/stream/"+f.name+"/downloads/"+typ)
			posted[f.name+"/"+typ] = code
			if len(env.Errors) > 0 {
				postErr[f.name+"/"+typ] = env.Errors[0].Message
			}
		}
	}

	for _, f := range flavours {
		t.Run(f.name, func(t *testing.T) {
			se := *e
			se.t = t
			dir := filepath.Join(streams, f.name)
			if f.decrypt {
				dir = decryptedCopy(t, dir, "play.m3u8")
			}
			switch {
			case f.live:
				if code, msg := posted[f.name+"/default"], postErr[f.name+"/default"]; code != http.StatusConflict || !strings.Contains(strings.ToLower(msg), "live") {
					t.Errorf("POST answered %d %q, want 409 saying the playlist is live", code, msg)
				}
				if code, env := se.call("GET", "/acct/stream/"+f.name+"/downloads"); code != 200 || len(env.Result) != 0 {
					t.Errorf("a refused live stream left downloads: %d %+v", code, env.Result)
				}
				expectNoFile(t, e.base+"/"+f.name+"/downloads/default.mp4")
			case f.reason != nil:
				if code := posted[f.name+"/default"]; code != http.StatusOK {
					t.Fatalf("POST answered %d; want 200, then status error", code)
				}
				en := se.waitReady(f.name, "default")
				if en.Status != "error" || en.ErrorReasonText == "" || !f.reason.MatchString(en.ErrorReasonText) {
					t.Fatalf("ended %s (%s: %q); want error with a reason matching %s", en.Status, en.ErrorReasonCode, en.ErrorReasonText, f.reason)
				}
				wantCode := f.code
				if wantCode == "" {
					wantCode = "unsupported_input"
				}
				if en.ErrorReasonCode != wantCode {
					t.Errorf("errorReasonCode %q, want %s", en.ErrorReasonCode, wantCode)
				}
				t.Logf("refused: %s: %s", en.ErrorReasonCode, en.ErrorReasonText)
				expectNoFile(t, e.base+"/"+f.name+"/downloads/default.mp4")
			default:
				t.Run("default", func(t *testing.T) {
					se.t = t
					if code := posted[f.name+"/default"]; code != http.StatusOK {
						t.Fatalf("POST answered %d", code)
					}
					en := se.waitReady(f.name, "default")
					if en.Status != "ready" {
						t.Fatalf("ended %s: %s: %s", en.Status, en.ErrorReasonCode, en.ErrorReasonText)
					}
					if f.messages != nil {
						_, env := se.call("GET", "/acct/stream/"+f.name+"/downloads")
						if msgs := strings.Join(env.Messages, "\n"); !f.messages.MatchString(msgs) {
							t.Errorf("messages %q: want one matching %s", env.Messages, f.messages)
						} else {
							t.Logf("messages: %q", env.Messages)
						}
					}
					path, resp := se.download(en.URL)
					if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "video/mp4" {
						t.Fatalf("GET %s: %d %s", en.URL, resp.StatusCode, resp.Header.Get("Content-Type"))
					}
					check := f.check
					if check == nil {
						check = func(t *testing.T, mp4, source string) string { return testutil.CompareWithSource(t, mp4, source) }
					}
					t.Log(check(t, path, filepath.Join(dir, f.source)))
					checkAudioCodec(t, f, path)
				})
				if f.audio != "" {
					t.Run("audio", func(t *testing.T) {
						se.t = t
						checkAudioDownload(t, &se, f, dir, posted[f.name+"/audio"])
					})
				}
			}
		})
	}
}

// checkAudioDownload checks the M4A of flavour f: only the source's audio, served as
// audio/mp4 at …/downloads/audio.m4a, brand "M4A " for AAC and "isom" for the other codecs;
// for a stream without audio, an error and no file.
func checkAudioDownload(t *testing.T, e *edge, f flavour, dir string, postCode int) {
	fileURL := e.base + "/" + f.name + "/downloads/audio.m4a"
	if f.audio == "-" {
		if postCode == http.StatusOK {
			if en := e.waitReady(f.name, "audio"); en.Status != "error" {
				t.Errorf("audio of a stream without audio ended %s, want error", en.Status)
			} else {
				t.Logf("refused: %s: %s", en.ErrorReasonCode, en.ErrorReasonText)
			}
		}
		expectNoFile(t, fileURL)
		return
	}
	if postCode != http.StatusOK {
		t.Fatalf("POST audio answered %d", postCode)
	}
	en := e.waitReady(f.name, "audio")
	if en.Status != "ready" {
		t.Fatalf("ended %s: %s: %s", en.Status, en.ErrorReasonCode, en.ErrorReasonText)
	}
	if en.URL != fileURL {
		t.Errorf("url %q, want %q", en.URL, fileURL)
	}
	path, resp := e.download(en.URL)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "audio/mp4" {
		t.Fatalf("GET %s: %d %q, want 200 audio/mp4", en.URL, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	p := testutil.ProbeFile(t, path)
	if len(p.Streams) != 1 || p.Streams[0].CodecType != "audio" {
		t.Errorf("M4A has %d streams (first %+v); want one audio stream", len(p.Streams), p.Streams)
	} else {
		brand := "isom" // ISO base media: the codec's own brand rules; not iTunes' M4A
		if p.Streams[0].CodecName == "aac" {
			brand = "M4A "
		}
		if got := p.Format.Tags["major_brand"]; got != brand {
			t.Errorf("M4A of %s audio has brand %q, want %q", p.Streams[0].CodecName, got, brand)
		}
	}
	t.Log(testutil.CompareAudioWithSource(t, path, filepath.Join(dir, f.audio)))
	checkAudioCodec(t, f, path)
}

// checkAudioCodec checks what CompareWithSource does not see of the audio of an MP4 of
// flavour f: the esds object type of MPEG-1/2 audio (ffprobe calls 0x6B and 0x69 alike
// "mp3"), and the channel layout.
func checkAudioCodec(t *testing.T, f flavour, path string) {
	t.Helper()
	if f.objectType != 0 {
		if got := testutil.ESDSObjectType(t, path); got != f.objectType {
			t.Errorf("esds object type %#x, want %#x", got, f.objectType)
		}
	}
	if f.layout != "" {
		p := testutil.ProbeFile(t, path, "-select_streams", "a")
		if len(p.Streams) != 1 || p.Streams[0].ChannelLayout != f.layout {
			t.Errorf("audio streams %+v, want one with channel layout %s", p.Streams, f.layout)
		}
	}
}

func expectNoFile(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET %s: %d, want 404", url, resp.StatusCode)
	}
}

// checkFlavourTable fails when the table and the folders that make.sh wrote disagree.
func checkFlavourTable(t *testing.T, streams string) {
	t.Helper()
	entries, err := os.ReadDir(streams)
	if err != nil {
		t.Fatal(err)
	}
	onDisk := map[string]bool{}
	for _, en := range entries {
		if en.IsDir() {
			onDisk[en.Name()] = true
		}
	}
	for _, f := range flavours {
		if !onDisk[f.name] {
			t.Errorf("flavour %s has no folder in %s (run testdata/conformance/make.sh)", f.name, streams)
		}
		delete(onDisk, f.name)
	}
	for name := range onDisk {
		t.Errorf("folder %s is not in the conformance table", name)
	}
}

// compareFromFirstKeyframe is CompareWithSource for a stream that starts in the middle of a
// GOP: the video can only start at the first keyframe (the frames before it do not decode,
// and ffprobe counts only decoded frames), audio may start earlier or be cut there too, but
// the offset between the two must be the source's and the duration must run from the first
// kept sample to the source's end.
func compareFromFirstKeyframe(t *testing.T, mp4, source string) string {
	t.Helper()
	if boxes := testutil.TopLevelBoxes(t, mp4); len(boxes) < 3 || boxes[0] != "ftyp" || boxes[1] != "moov" {
		t.Errorf("top-level boxes %v: want ftyp, moov, …, mdat", boxes)
	}
	if msg := testutil.DecodeErrors(t, mp4); msg != "" {
		t.Errorf("ffmpeg decoding printed errors:\n%s", msg)
	}
	src := testutil.ProbeFile(t, source, "-count_frames")
	out := testutil.ProbeFile(t, mp4, "-count_frames")
	stream := func(p *testutil.Probe, kind string) int {
		for i, s := range p.Streams {
			if s.CodecType == kind {
				return i
			}
		}
		t.Fatalf("no %s stream", kind)
		return -1
	}
	sv, sa := src.Streams[stream(src, "video")], src.Streams[stream(src, "audio")]
	ov, oa := out.Streams[stream(out, "video")], out.Streams[stream(out, "audio")]
	if ov.CodecTagName != "avc1" || oa.CodecTagName != "mp4a" || ov.Width != sv.Width || oa.Channels != sa.Channels {
		t.Errorf("output %s/%s %dx%d %d ch, source %s %dx%d %d ch", ov.CodecTagName, oa.CodecTagName, ov.Width, ov.Height, oa.Channels, sv.CodecName, sv.Width, sv.Height, sa.Channels)
	}
	if ov.NbReadFrames != sv.NbReadFrames {
		t.Errorf("video frames %s, source %s decodable", ov.NbReadFrames, sv.NbReadFrames)
	}

	pkts := sourcePackets(t, source)
	key, end := math.Inf(1), math.Inf(-1)
	var audio []float64
	for _, p := range pkts {
		end = max(end, p.pts+p.dur)
		switch {
		case p.kind == "audio":
			audio = append(audio, p.pts)
		case strings.HasPrefix(p.flags, "K"):
			key = min(key, p.pts)
		}
	}
	sort.Float64s(audio)
	nOut, err := strconv.Atoi(oa.NbReadFrames)
	if err != nil || nOut == 0 || nOut > len(audio) {
		t.Fatalf("output has %s audio frames, source %d", oa.NbReadFrames, len(audio))
	}
	firstAudio := audio[len(audio)-nOut] // audio may only be cut at the start
	if firstAudio > key+0.05 {
		t.Errorf("output audio starts at source time %.4f, after the first keyframe %.4f", firstAudio, key)
	}
	frame := 1 / 25.0
	wantOff, gotOff := key-firstAudio, testutil.Seconds(t, ov.StartTime)-testutil.Seconds(t, oa.StartTime)
	if math.Abs(wantOff-gotOff) > frame {
		t.Errorf("video starts %.4f s after audio, in the source (from the first keyframe) %.4f s", gotOff, wantOff)
	}
	wantDur, gotDur := end-min(key, firstAudio), testutil.Seconds(t, out.Format.Duration)
	if math.Abs(wantDur-gotDur) > frame {
		t.Errorf("duration %.4f s, want %.4f s (source from the first kept sample)", gotDur, wantDur)
	}
	return fmt.Sprintf("duration %.4f s (want %.4f s), video−audio start %.4f s (want %.4f s), audio frames %d of %d",
		gotDur, wantDur, gotOff, wantOff, nOut, len(audio))
}

type packet struct {
	kind, flags string
	pts, dur    float64
}

// sourcePackets lists the packets of every stream of input, with their times.
func sourcePackets(t *testing.T, input string) []packet {
	t.Helper()
	// Output, not testutil.Run: the decoder's complaints about the undecodable frames go
	// to stderr and must not mix with the JSON.
	out, err := exec.Command(testutil.Tool(t, "ffprobe"), "-v", "error", "-show_entries",
		"packet=stream_index,pts_time,duration_time,flags:stream=index,codec_type", "-of", "json", input).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", input, err)
	}
	var r struct {
		Packets []struct {
			Index int    `json:"stream_index"`
			PTS   string `json:"pts_time"`
			Dur   string `json:"duration_time"`
			Flags string `json:"flags"`
		} `json:"packets"`
		Streams []struct {
			Index     int    `json:"index"`
			CodecType string `json:"codec_type"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	kinds := map[int]string{}
	for _, s := range r.Streams {
		kinds[s.Index] = s.CodecType
	}
	var pkts []packet
	for _, p := range r.Packets {
		if p.PTS == "" || p.PTS == "N/A" {
			continue
		}
		pk := packet{kind: kinds[p.Index], flags: p.Flags, pts: testutil.Seconds(t, p.PTS)}
		if p.Dur != "" && p.Dur != "N/A" {
			pk.dur = testutil.Seconds(t, p.Dur)
		}
		pkts = append(pkts, pk)
	}
	return pkts
}

// TestConformanceFixtures checks that the committed streams are exactly what make.sh wrote
// (testdata/conformance/SHA256SUMS, written by make.sh; `make.sh --check` regenerates them all
// and compares, which is too slow for every test run).
func TestConformanceFixtures(t *testing.T) {
	dir := conformanceDir(t)
	f, err := os.Open(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS: bad line %q", sc.Text())
		}
		want[filepath.Clean(name)] = sum
	}
	streams := filepath.Join(dir, "streams")
	err = filepath.WalkDir(streams, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(streams, path)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		switch w, ok := want[rel]; {
		case !ok:
			t.Errorf("%s is not made by make.sh (not in SHA256SUMS)", rel)
		case w != hex.EncodeToString(sum[:]):
			t.Errorf("%s differs from what make.sh made (rerun testdata/conformance/make.sh)", rel)
		}
		delete(want, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range want {
		t.Errorf("%s is missing (rerun testdata/conformance/make.sh)", name)
	}

	// The stream types and descriptors README.md gives (another ffmpeg might write others).
	for _, f := range flavours {
		if f.pmt == "" {
			continue
		}
		if got := testutil.PMTString(t, filepath.Join(streams, f.name, "seg_000.ts")); got != f.pmt {
			t.Errorf("%s/seg_000.ts: PMT declares %s, want %s", f.name, got, f.pmt)
		}
	}
}

// decryptedCopy writes the AES-128 media playlist name of dir and its segments, decrypted,
// into a new folder, and returns that folder. Key and IV as RFC 8216 §5.2: the IV from the
// tag, else the segment's media sequence number.
func decryptedCopy(t *testing.T, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var plain []string
	var block cipher.Block
	var iv []byte
	seq := 0
	attr := regexp.MustCompile(`(URI="([^"]*)"|IV=0[xX]([0-9a-fA-F]+))`)
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
			if seq, err = strconv.Atoi(strings.TrimPrefix(line, "#EXT-X-MEDIA-SEQUENCE:")); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(line, "#EXT-X-KEY:"):
			if !strings.Contains(line, "METHOD=AES-128") {
				t.Fatalf("not AES-128: %s", line)
			}
			iv = nil
			for _, m := range attr.FindAllStringSubmatch(line, -1) {
				if m[2] != "" {
					key, err := os.ReadFile(filepath.Join(dir, m[2]))
					if err != nil {
						t.Fatal(err)
					}
					if block, err = aes.NewCipher(key); err != nil {
						t.Fatal(err)
					}
				}
				if m[3] != "" {
					if iv, err = hex.DecodeString(fmt.Sprintf("%032s", m[3])); err != nil {
						t.Fatal(err)
					}
				}
			}
			continue
		case line != "" && !strings.HasPrefix(line, "#"):
			if block == nil {
				t.Fatalf("segment %s before any key", line)
			}
			segIV := iv
			if segIV == nil {
				segIV = make([]byte, 16)
				binary.BigEndian.PutUint64(segIV[8:], uint64(seq))
			}
			seg, err := os.ReadFile(filepath.Join(dir, line))
			if err != nil {
				t.Fatal(err)
			}
			if len(seg) == 0 || len(seg)%aes.BlockSize != 0 {
				t.Fatalf("%s: %d bytes, not whole AES blocks", line, len(seg))
			}
			cipher.NewCBCDecrypter(block, segIV).CryptBlocks(seg, seg)
			pad := int(seg[len(seg)-1])
			if pad < 1 || pad > aes.BlockSize {
				t.Fatalf("%s: bad PKCS#7 padding %d (wrong key or IV)", line, pad)
			}
			if err := os.WriteFile(filepath.Join(out, line), seg[:len(seg)-pad], 0o644); err != nil {
				t.Fatal(err)
			}
			seq++
		}
		plain = append(plain, line)
	}
	if err := os.WriteFile(filepath.Join(out, name), []byte(strings.Join(plain, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}
