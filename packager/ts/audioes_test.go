package ts

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"

	"github.com/stream-downloads/caddy-stream-downloads/packager/codec"
)

// fakeEAC3 is a frame syntax of 4-byte frames 0xAB, substream, blocks, 0: substream 0 is
// independent substream 0, 1 a dependent substream, 2 independent substream 1. It lets
// the joining rules be tested with streams ffmpeg cannot make.
type fakeEAC3 struct{}

func (fakeEAC3) name() string         { return "fake frame" }
func (fakeEAC3) syncAt(b []byte) bool { return b[0] == 0xab }
func (fakeEAC3) length(b []byte) (int, lenStatus) {
	return 4, lenOK
}
func (fakeEAC3) frame(f []byte) (audioFrame, bool, error) {
	h := codec.AC3Header{EAC3: true, FrameSize: 4, SampleRate: 48000, Samples: 256 * int(f[2]), Channels: 2, Acmod: 2}
	switch f[1] {
	case 1:
		h.StreamType = 1
	case 2:
		h.SubstreamID = 1
	}
	return audioFrame{payload: f, hdr: 2, samples: h.Samples, joins: true, ac3: h}, true, nil
}

func TestEAC3Units(t *testing.T) {
	fr := func(sub, blocks byte) []byte { return []byte{0xab, sub, blocks, 0} }
	cat := func(fs ...[]byte) (out []byte) {
		for _, f := range fs {
			out = append(out, f...)
		}
		return out
	}
	tests := []struct {
		name  string
		in    []byte
		units []int // frames per unit
		lead  int64 // bytes before the first unit, within the first PES
		lose  bool  // packets are lost after in, then a dependent substream comes
		lost  bool
	}{
		{"one frame per unit", cat(fr(0, 6), fr(0, 6), fr(0, 6)), []int{1, 1, 1}, 0, false, false},
		{"dependent substreams join", cat(fr(0, 6), fr(1, 6), fr(0, 6), fr(1, 6)), []int{2, 2}, 0, false, false},
		{"second program joins", cat(fr(0, 6), fr(2, 6), fr(1, 6), fr(0, 6), fr(2, 6)), []int{3, 2}, 0, false, false},
		{"short frames make 1536", cat(fr(0, 3), fr(0, 3), fr(0, 2), fr(0, 2), fr(0, 2)), []int{2, 3}, 0, false, false},
		// The stream begins inside a unit: its tail is left out, not lost.
		{"starts with a dependent substream", cat(fr(1, 6), fr(0, 6)), []int{1}, 4, false, false},
		// The unit in progress is cut by the loss, and so is what comes after.
		{"dependent substream after a loss", cat(fr(0, 6), fr(0, 6), fr(0, 6)), []int{1, 1}, 0, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			var lost losses
			a := audioES{syn: fakeEAC3{}, lost: &lost, on: func(u audioUnit) error {
				got = append(got, len(u.data)/4)
				if u.samples < eac3UnitSamples && len(got) > 0 {
					t.Errorf("unit of %d samples", u.samples)
				}
				return nil
			}}
			a.pes(true, 0, 0)
			if err := a.write(tc.in); err != nil {
				t.Fatal(err)
			}
			if tc.lose {
				// Packets lost, then a dependent substream whose unit went with them.
				a.lose()
				a.pes(true, 0, 0)
				if err := a.write(fr(1, 6)); err != nil {
					t.Fatal(err)
				}
			}
			if err := a.flush(); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.units) {
				t.Fatalf("units of %v frames, want %v", got, tc.units)
			}
			for i := range got {
				if got[i] != tc.units[i] {
					t.Errorf("units of %v frames, want %v", got, tc.units)
					break
				}
			}
			if lost.any() != tc.lost || a.lead != tc.lead {
				t.Errorf("lost %q, lead %d; want lost %v, lead %d", &lost, a.lead, tc.lost, tc.lead)
			}
		})
	}
}

// TestAudioCutAnywhere: the frames of every frame syntax come out the same whether the
// stream arrives whole or in pieces cut anywhere (as packagers cut audio PES, inside
// headers too).
func TestAudioCutAnywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ffmpeg")
	}
	for _, tc := range []struct {
		kind streamKind
		args []string
	}{
		{kindAAC, []string{"-c:a", "aac", "-f", "adts"}},
		{kindAC3, []string{"-c:a", "ac3", "-ac", "6", "-f", "ac3"}},
		{kindAC3, []string{"-c:a", "eac3", "-f", "eac3"}},
		{kindMPEGAudio, []string{"-c:a", "libmp3lame", "-write_xing", "0", "-id3v2_version", "0", "-f", "mp3"}},
		{kindMPEGAudio, []string{"-c:a", "mp2", "-f", "mp2"}},
	} {
		t.Run(tc.args[1], func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "es")
			testutil.Run(t, "ffmpeg", append(append([]string{"-v", "error", "-y", "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "1"}, tc.args...), out)...)
			es, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			read := func(pieces [][]byte) (units [][]byte) {
				var lost losses
				a := audioES{syn: newFrameSyntax(tc.kind, nil), lost: &lost, on: func(u audioUnit) error {
					units = append(units, bytes.Clone(u.data))
					return nil
				}}
				for i, p := range pieces {
					a.pes(i == 0, 0, 0)
					if err := a.write(p); err != nil {
						t.Fatal(err)
					}
				}
				if err := a.flush(); err != nil {
					t.Fatal(err)
				}
				if lost.any() {
					t.Fatalf("lost: %s", &lost)
				}
				return units
			}
			whole := read([][]byte{es})
			rng := rand.New(rand.NewPCG(1, 2))
			var pieces [][]byte
			for b := es; len(b) > 0; {
				n := min(len(b), 1+rng.IntN(300))
				pieces = append(pieces, b[:n])
				b = b[n:]
			}
			cut := read(pieces)
			if len(whole) < 10 || len(cut) != len(whole) {
				t.Fatalf("%d units from pieces, %d whole", len(cut), len(whole))
			}
			for i := range whole {
				if !bytes.Equal(whole[i], cut[i]) {
					t.Fatalf("unit %d differs", i)
				}
			}
		})
	}
}
