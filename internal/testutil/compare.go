package testutil

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"sort"
	"testing"
)

// mp4Tags is the sample entry a codec (ffprobe's name) must have in our MP4 files. MPEG-1/2
// audio (MP3, MP2) is mp4a with an esds of object type 0x6B or 0x69 (see ESDSObjectType).
var mp4Tags = map[string]string{
	"h264": "avc1", "hevc": "hvc1", "av1": "av01",
	"aac": "mp4a", "ac3": "ac-3", "eac3": "ec-3", "mp3": "mp4a", "mp2": "mp4a", "opus": "Opus",
}

// sameCodec says whether ffprobe's codec name out, of a stream of our MP4, is the source's
// src. ffmpeg's MP4 reader names every MPEG-1/2 audio stream (object type 0x6B or 0x69)
// mp3, whatever its layer: an MP2 source comes out as "mp3" (and decodes as MP2).
func sameCodec(src, out string) bool {
	return src == out || (src == "mp2" || src == "mp1") && out == "mp3"
}

// frameSamples is the number of samples in a frame of an audio codec as the encoders of
// the fixtures write them (0: unknown, the source's packet durations tell): AAC 1024,
// AC-3 and E-AC-3 1536 (six blocks), MPEG-1 layer II and III 1152, MPEG-2 (LSF, below
// 32 kHz) layer III 576, Opus 960 (20 ms, libopus' default), DTS 512.
func frameSamples(codec string, rate float64) float64 {
	switch codec {
	case "aac":
		return 1024
	case "ac3", "eac3":
		return 1536
	case "mp2":
		return 1152
	case "mp3":
		if rate < 32000 {
			return 576
		}
		return 1152
	case "mp1":
		return 384
	case "opus":
		return 960 * rate / 48000
	case "dts":
		return 512
	}
	return 0
}

// epsilon covers ffprobe's rounding of times to the microsecond, in the comparisons
// "within a frame": an output that is exactly one frame off (an Opus track trimmed by its
// pre-skip and end trim, 960 samples together here) must pass.
const epsilon = 1e-3

// CompareWithSource checks an MP4 made from source (anything ffprobe reads: a playlist,
// a concat: list) the way a user would see it: faststart layout, a clean full decode with
// ffmpeg, the same streams (codec, size, channels and their layout, rate, frame count), the
// duration and the audio/video start offset within one frame of the source's. It returns a
// summary for the test log.
func CompareWithSource(t testing.TB, mp4Path, source string) string {
	t.Helper()
	return compare(t, mp4Path, source, []string{"video", "audio"})
}

// CompareAudioWithSource is CompareWithSource for an M4A (audio only) made from source: the
// M4A against the source's audio stream alone (its packets give the duration), whether or
// not the source has video.
func CompareAudioWithSource(t testing.TB, m4aPath, source string) string {
	t.Helper()
	return compare(t, m4aPath, source, []string{"audio"})
}

func compare(t testing.TB, mp4Path, source string, kinds []string) string {
	t.Helper()
	if boxes := TopLevelBoxes(t, mp4Path); len(boxes) < 3 || boxes[0] != "ftyp" || boxes[1] != "moov" || boxes[len(boxes)-1] != "mdat" {
		t.Errorf("top-level boxes %v: want ftyp, moov, …, mdat (faststart)", boxes)
	}
	if msg := DecodeErrors(t, mp4Path); msg != "" {
		t.Errorf("ffmpeg decoding printed errors:\n%s", msg)
	}
	sel := []string{}
	if len(kinds) == 1 {
		sel = []string{"-select_streams", kinds[0][:1]} // "v" or "a"
	}
	src := ProbeFile(t, source, append(sel, "-count_frames")...)
	out := ProbeFile(t, mp4Path, "-count_frames")

	frame := 0.0 // one frame of the finest stream, the tolerance on times
	start := map[string][2]float64{}
	for _, kind := range kinds {
		si, oi := src.find(kind), out.find(kind)
		if si < 0 {
			if oi >= 0 {
				t.Errorf("output has a %s stream the source has not", kind)
			}
			continue
		}
		if oi < 0 {
			t.Errorf("output lost the source's %s stream", kind)
			continue
		}
		s, o := src.Streams[si], out.Streams[oi]
		if !sameCodec(s.CodecName, o.CodecName) || o.CodecTagName != mp4Tags[s.CodecName] {
			t.Errorf("%s codec %s/%s, source %s (want tag %s)", kind, o.CodecName, o.CodecTagName, s.CodecName, mp4Tags[s.CodecName])
		}
		if o.Width != s.Width || o.Height != s.Height || o.SampleRate != s.SampleRate || o.Channels != s.Channels || o.ChannelLayout != s.ChannelLayout {
			t.Errorf("%s %dx%d %s Hz %d ch (%s), source %dx%d %s Hz %d ch (%s)", kind,
				o.Width, o.Height, o.SampleRate, o.Channels, o.ChannelLayout, s.Width, s.Height, s.SampleRate, s.Channels, s.ChannelLayout)
		}
		if o.NbReadFrames != s.NbReadFrames {
			t.Errorf("%s frames %s, source %s", kind, o.NbReadFrames, s.NbReadFrames)
		}
		measured := func() float64 { return packetSeconds(t, source, s.Index) }
		if f := frameSeconds(t, s.CodecName, s.AvgFrameRate, s.SampleRate, measured); frame == 0 || f > frame {
			frame = f
		}
		start[kind] = [2]float64{Seconds(t, s.StartTime), Seconds(t, o.StartTime)}
	}
	frame += epsilon

	var srcDur float64
	if len(kinds) == 1 {
		srcDur = streamSpan(t, source, src.Streams[src.find(kinds[0])].Index)
	} else {
		srcDur = PacketSpan(t, source)
	}
	outDur := Seconds(t, out.Format.Duration)
	if math.Abs(srcDur-outDur) > frame {
		t.Errorf("duration %.4f s, source %.4f s: more than a frame (%.4f s) apart", outDur, srcDur, frame)
	}
	summary := fmt.Sprintf("duration %.4f s (source %.4f s)", outDur, srcDur)
	if v, ok := start["video"]; ok {
		if a, ok := start["audio"]; ok {
			srcOff, outOff := v[0]-a[0], v[1]-a[1]
			if math.Abs(srcOff-outOff) > frame {
				t.Errorf("video starts %.4f s after audio, in the source %.4f s", outOff, srcOff)
			}
			summary += fmt.Sprintf(", video−audio start %.4f s (source %.4f s)", outOff, srcOff)
		}
	}
	return summary
}

func (p *Probe) find(kind string) int {
	for i, s := range p.Streams {
		if s.CodecType == kind {
			return i
		}
	}
	return -1
}

// frameSeconds is the length of one frame: from a video frame rate ("25/1"), or of an
// audio frame of codec (frameSamples) at an audio sample rate; measured is what the
// source's packets last (packetSeconds), for a codec frameSamples does not know.
func frameSeconds(t testing.TB, codec, rate, sampleRate string, measured func() float64) float64 {
	if sampleRate != "" {
		r := Seconds(t, sampleRate)
		if n := frameSamples(codec, r); n > 0 {
			return n / r
		}
		if m := measured(); m > 0 {
			return m
		}
		t.Fatalf("no frame length known for %s audio", codec)
	}
	var num, den float64
	if _, err := fmt.Sscanf(rate, "%g/%g", &num, &den); err != nil || num == 0 {
		t.Fatalf("frame rate %q", rate)
	}
	return den / num
}

// PacketSpan is the real duration of input: from the earliest packet PTS to the latest
// packet end over all streams (ffprobe's format duration of MPEG-TS and HLS is an
// estimate). Packets ffprobe gives no time or duration are timed as their neighbours
// (timedPackets).
func PacketSpan(t testing.TB, input string) float64 {
	t.Helper()
	return span(timedPackets(t, input), -1)
}

// streamSpan is PacketSpan of one stream of input (its index).
func streamSpan(t testing.TB, input string, index int) float64 {
	t.Helper()
	return span(timedPackets(t, input), index)
}

// packetSeconds is the median duration of the packets of stream index of input (0 if
// none is known).
func packetSeconds(t testing.TB, input string, index int) float64 {
	t.Helper()
	var d []float64
	for _, p := range timedPackets(t, input) {
		if p.stream == index && p.dur > 0 {
			d = append(d, p.dur)
		}
	}
	if len(d) == 0 {
		return 0
	}
	sort.Float64s(d)
	return d[len(d)/2]
}

func span(pkts []timedPacket, index int) float64 {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range pkts {
		if index < 0 || p.stream == index {
			lo, hi = min(lo, p.pts), max(hi, p.pts+p.dur)
		}
	}
	if lo > hi {
		return 0
	}
	return hi - lo
}

type timedPacket struct {
	stream   int
	pts, dur float64
}

// timedPackets lists the packets of input with their times in seconds, as ffprobe shows
// them, completed where it shows none: ffmpeg's MPEG-TS reader gives a time only to the
// first of the audio frames of a PES and no duration to Opus frames (in TS or fMP4), so a
// packet without a duration lasts what the packets between two known times last on
// average (or, after the last one, what the packet before lasted), and a packet without a
// time starts where the one before it ended. Packets before the first known time are left
// out.
func timedPackets(t testing.TB, input string) []timedPacket {
	t.Helper()
	// Stdout only: what a decoder says of undecodable frames (a stream that starts mid-GOP)
	// goes to stderr and must not mix with the JSON.
	cmd := exec.Command(Tool(t, "ffprobe"), "-v", "error", "-show_entries", "packet=stream_index,pts_time,duration_time", "-of", "json", input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", input, err, stderr.Bytes())
	}
	var r struct {
		Packets []struct {
			Stream int    `json:"stream_index"`
			PTS    string `json:"pts_time"`
			Dur    string `json:"duration_time"`
		} `json:"packets"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	known := func(s string) bool { return s != "" && s != "N/A" }
	byStream := map[int][]int{} // packet indexes of each stream, in order
	for i, p := range r.Packets {
		byStream[p.Stream] = append(byStream[p.Stream], i)
	}
	pkts := make([]timedPacket, len(r.Packets))
	have := make([]bool, len(r.Packets))
	for st, idx := range byStream {
		// Durations: given, else spread between the known times around them.
		dur := make([]float64, len(idx))
		for k, i := range idx {
			if known(r.Packets[i].Dur) {
				dur[k] = Seconds(t, r.Packets[i].Dur)
			}
		}
		prev := -1 // the last packet with a time
		for k, i := range idx {
			if !known(r.Packets[i].PTS) {
				continue
			}
			if prev >= 0 {
				d := (Seconds(t, r.Packets[i].PTS) - Seconds(t, r.Packets[idx[prev]].PTS)) / float64(k-prev)
				for j := prev; j < k; j++ {
					if !known(r.Packets[idx[j]].Dur) && d > 0 {
						dur[j] = d
					}
				}
			}
			prev = k
		}
		for k := range idx {
			if dur[k] == 0 && k > 0 && !known(r.Packets[idx[k]].Dur) {
				dur[k] = dur[k-1]
			}
		}
		// Times: given, else the end of the packet before.
		next, started := 0.0, false
		for k, i := range idx {
			switch {
			case known(r.Packets[i].PTS):
				pkts[i] = timedPacket{stream: st, pts: Seconds(t, r.Packets[i].PTS), dur: dur[k]}
			case started:
				pkts[i] = timedPacket{stream: st, pts: next, dur: dur[k]}
			default:
				continue
			}
			started, have[i] = true, true
			next = pkts[i].pts + pkts[i].dur
		}
	}
	var timed []timedPacket
	for i, p := range pkts {
		if have[i] {
			timed = append(timed, p)
		}
	}
	return timed
}
