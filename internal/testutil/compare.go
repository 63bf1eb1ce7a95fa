package testutil

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"
)

// mp4Tags is the sample entry a codec must have in our MP4 files.
var mp4Tags = map[string]string{"h264": "avc1", "hevc": "hvc1", "aac": "mp4a"}

// CompareWithSource checks an MP4 made from source (anything ffprobe reads: a playlist,
// a concat: list) the way a user would see it: faststart layout, a clean full decode with
// ffmpeg, the same streams (codec, size, channels, rate, frame count), the duration and
// the audio/video start offset within one frame of the source's. It returns a summary for
// the test log.
func CompareWithSource(t testing.TB, mp4Path, source string) string {
	t.Helper()
	if boxes := TopLevelBoxes(t, mp4Path); len(boxes) < 3 || boxes[0] != "ftyp" || boxes[1] != "moov" || boxes[len(boxes)-1] != "mdat" {
		t.Errorf("top-level boxes %v: want ftyp, moov, …, mdat (faststart)", boxes)
	}
	if msg := DecodeErrors(t, mp4Path); msg != "" {
		t.Errorf("ffmpeg decoding printed errors:\n%s", msg)
	}
	src := ProbeFile(t, source, "-count_frames")
	out := ProbeFile(t, mp4Path, "-count_frames")

	frame := 0.0 // one frame of the finest stream, the tolerance on times
	start := map[string][2]float64{}
	for _, kind := range []string{"video", "audio"} {
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
		if o.CodecName != s.CodecName || o.CodecTagName != mp4Tags[s.CodecName] {
			t.Errorf("%s codec %s/%s, source %s (want tag %s)", kind, o.CodecName, o.CodecTagName, s.CodecName, mp4Tags[s.CodecName])
		}
		if o.Width != s.Width || o.Height != s.Height || o.SampleRate != s.SampleRate || o.Channels != s.Channels {
			t.Errorf("%s %dx%d %s Hz %d ch, source %dx%d %s Hz %d ch", kind,
				o.Width, o.Height, o.SampleRate, o.Channels, s.Width, s.Height, s.SampleRate, s.Channels)
		}
		if o.NbReadFrames != s.NbReadFrames {
			t.Errorf("%s frames %s, source %s", kind, o.NbReadFrames, s.NbReadFrames)
		}
		if f := frameSeconds(t, s.AvgFrameRate, s.SampleRate); frame == 0 || f > frame {
			frame = f
		}
		start[kind] = [2]float64{Seconds(t, s.StartTime), Seconds(t, o.StartTime)}
	}

	srcDur, outDur := PacketSpan(t, source), Seconds(t, out.Format.Duration)
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
// AAC frame (1024 samples) at an audio sample rate.
func frameSeconds(t testing.TB, rate, sampleRate string) float64 {
	if sampleRate != "" {
		return 1024 / Seconds(t, sampleRate)
	}
	var num, den float64
	if _, err := fmt.Sscanf(rate, "%g/%g", &num, &den); err != nil || num == 0 {
		t.Fatalf("frame rate %q", rate)
	}
	return den / num
}

// PacketSpan is the real duration of input: from the earliest packet PTS to the latest
// packet end over all streams (ffprobe's format duration of MPEG-TS and HLS is an
// estimate).
func PacketSpan(t testing.TB, input string) float64 {
	t.Helper()
	out := Run(t, "ffprobe", "-v", "error", "-show_entries", "packet=pts_time,duration_time", "-of", "json", input)
	var r struct {
		Packets []struct {
			PTS string `json:"pts_time"`
			Dur string `json:"duration_time"`
		} `json:"packets"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range r.Packets {
		if p.PTS == "" || p.PTS == "N/A" {
			continue
		}
		s := Seconds(t, p.PTS)
		d := 0.0
		if p.Dur != "" && p.Dur != "N/A" {
			d = Seconds(t, p.Dur)
		}
		lo, hi = min(lo, s), max(hi, s+d)
	}
	return hi - lo
}
