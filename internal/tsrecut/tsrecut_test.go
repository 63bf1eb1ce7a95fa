package tsrecut

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/asticode/go-astits"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/stream-downloads/caddy-stream-downloads/internal/mpegcrc"
	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// The inputs are segments of the conformance streams (testdata/conformance/make.sh):
// ffmpeg's output, every PES aligned.
func input(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "testdata", "conformance", "streams", rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var structureInputs = []string{
	"ts-h264-aac/hi/seg_000.ts", "ts-h264-aac/hi/seg_001.ts", "ts-h264-aac/hi/seg_002.ts",
	"ts-hevc-aac/seg_000.ts", "ts-hevc-aac/seg_002.ts",
	"aac-51/seg_001.ts",     // 6-channel ADTS frames, larger
	"audio-only/seg_000.ts", // PCR on the audio PID
	"video-only/seg_001.ts", // one stream
	"wrap/seg_001.ts",       // the 33-bit timestamps wrap in this one
	"separate-audio/audio_002.ts",
}

// pes is one PES as the test's own reader (not this package's) sees it.
type pes struct {
	pid       uint16
	data      []byte
	pts, dts  int64 // -1: absent
	aligned   bool  // data_alignment_indicator
	lengthSet bool  // PES_packet_length not 0
	dataLen   int   // the payload length it implies
}

// demuxPES reads the PES of the elementary-stream PIDs of pmt, checking their headers
// strictly. Written apart from the package's reader, and not go-astits: its packet
// accumulator loses a PES without PES_packet_length when the next one fits in a single
// packet with its length set (it returns only the latter), which these cuts produce.
func demuxPES(t *testing.T, b []byte, pmt *astits.PMTData) []pes {
	t.Helper()
	streams := map[uint16]bool{}
	for _, es := range pmt.ElementaryStreams {
		streams[es.ElementaryPID] = true
	}
	var out []pes
	open := map[uint16]int{} // index in out of the PES being read
	for pos := 0; pos+188 <= len(b); pos += 188 {
		p := b[pos : pos+188]
		pid := uint16(p[1]&0x1f)<<8 | uint16(p[2])
		if !streams[pid] || p[3]&0x10 == 0 {
			continue
		}
		payload := p[4:]
		if p[3]&0x20 != 0 {
			payload = p[5+int(p[4]):]
		}
		if p[1]&0x40 == 0 {
			if i, ok := open[pid]; ok {
				out[i].data = append(out[i].data, payload...)
			}
			continue
		}
		h := payload
		if len(h) < 9 || h[0] != 0 || h[1] != 0 || h[2] != 1 || h[6]>>6 != 2 {
			t.Fatalf("packet at %d: bad PES header % x", pos, h[:min(len(h), 9)])
		}
		flags, hdl := h[7]>>6, int(h[8])
		want := map[byte]int{0: 0, 2: 5, 3: 10}[flags]
		if flags == 1 || hdl != want || h[7]&0x3f != 0 {
			t.Fatalf("packet at %d: PTS_DTS_flags %d, other flags %#x, header_data_length %d", pos, flags, h[7]&0x3f, hdl)
		}
		ts := func(b []byte, prefix byte) int64 {
			if b[0]>>4 != prefix || b[0]&1 != 1 || b[2]&1 != 1 || b[4]&1 != 1 {
				t.Fatalf("packet at %d: bad timestamp % x (prefix %d)", pos, b[:5], prefix)
			}
			return int64(b[0]>>1&7)<<30 | int64(b[1])<<22 | int64(b[2]>>1)<<15 | int64(b[3])<<7 | int64(b[4]>>1)
		}
		e := pes{pid: pid, pts: -1, dts: -1, aligned: h[6]&0x04 != 0, lengthSet: h[4] != 0 || h[5] != 0}
		switch flags {
		case 2:
			e.pts = ts(h[9:], 2)
		case 3:
			e.pts, e.dts = ts(h[9:], 3), ts(h[14:], 1)
		}
		e.dataLen = (int(h[4])<<8 | int(h[5])) - 3 - hdl
		e.data = append([]byte(nil), h[9+hdl:]...)
		open[pid] = len(out)
		out = append(out, e)
	}
	for i, e := range out {
		// The length, when set, is the PES's: the payload of its packets (stuffing goes in
		// adaptation fields).
		if e.lengthSet && len(e.data) != e.dataLen {
			t.Errorf("PES %d (PID %#x): %d bytes of payload, PES_packet_length says %d", i, e.pid, len(e.data), e.dataLen)
		}
	}
	return out
}

// pmtOf reads the PMT with go-astits (which checks its CRC32).
func pmtOf(t *testing.T, b []byte) *astits.PMTData {
	t.Helper()
	dmx := astits.NewDemuxer(context.Background(), bytes.NewReader(b))
	for {
		d, err := dmx.NextData()
		if err != nil {
			t.Fatalf("go-astits found no PMT: %v", err)
		}
		if d.PMT != nil {
			return d.PMT
		}
	}
}

// esOf concatenates the PES payloads of each PID.
func esOf(ps []pes) map[uint16][]byte {
	es := map[uint16][]byte{}
	for _, p := range ps {
		es[p.pid] = append(es[p.pid], p.data...)
	}
	return es
}

// refAU is an access unit of the aligned input, found without this package's reader: the
// start of each video PES, each ADTS frame of an audio PES (mediacommon's ADTS reader).
type refAU struct {
	off      int
	pts, dts int64
}

func referenceAUs(t *testing.T, pmt *astits.PMTData, ps []pes) map[uint16][]refAU {
	t.Helper()
	video := map[uint16]bool{}
	for _, es := range pmt.ElementaryStreams {
		video[es.ElementaryPID] = es.StreamType == astits.StreamTypeH264Video || es.StreamType == astits.StreamTypeH265Video
	}
	aus := map[uint16][]refAU{}
	off := map[uint16]int{}
	for _, p := range ps {
		if p.pts < 0 {
			t.Fatalf("input PES on PID %#x without PTS: not an aligned input", p.pid)
		}
		dts := p.dts
		if dts < 0 {
			dts = p.pts
		}
		if video[p.pid] {
			aus[p.pid] = append(aus[p.pid], refAU{off[p.pid], p.pts, dts})
		} else {
			var frames mpeg4audio.ADTSPackets
			if err := frames.Unmarshal(p.data); err != nil {
				t.Fatalf("input audio PES: %v", err)
			}
			o := off[p.pid]
			for k, f := range frames {
				ts := (p.pts + int64(k)*1024*90000/int64(f.SampleRate)) & (1<<33 - 1)
				aus[p.pid] = append(aus[p.pid], refAU{o, ts, ts})
				o += 7 + len(f.AU)
			}
			if o != off[p.pid]+len(p.data) {
				t.Fatalf("ADTS frames of %d bytes in a PES of %d", o-off[p.pid], len(p.data))
			}
		}
		off[p.pid] += len(p.data)
	}
	return aus
}

// checkPackets: 188-byte packets with sync bytes, continuity counters that count up by
// one on every PID, a PCR on the PCR PID that never goes back.
func checkPackets(t *testing.T, b []byte, pcrPID uint16) (pcrs int) {
	t.Helper()
	if len(b)%PacketSize != 0 {
		t.Fatalf("%d bytes: not whole packets", len(b))
	}
	last := map[uint16]int{}
	prevPCR := int64(-1)
	for pos := 0; pos < len(b); pos += PacketSize {
		p := b[pos : pos+PacketSize]
		if p[0] != syncByte {
			t.Fatalf("no sync byte at %d", pos)
		}
		pid := uint16(p[1]&0x1f)<<8 | uint16(p[2])
		afc := p[3] >> 4 & 3
		if afc == 0 {
			t.Fatalf("adaptation_field_control 0 at %d", pos)
		}
		if afc&2 != 0 {
			if p[4] > 183 || afc == 3 && p[4] > 182 {
				t.Fatalf("adaptation field of %d bytes at %d", p[4], pos)
			}
			if p[4] > 0 && p[5]&0x10 != 0 {
				if pid != pcrPID {
					t.Errorf("PCR on PID %#x, the PCR PID is %#x", pid, pcrPID)
				}
				pcr := int64(p[6])<<25 | int64(p[7])<<17 | int64(p[8])<<9 | int64(p[9])<<1 | int64(p[10])>>7
				if prevPCR >= 0 && unwrap(pcr, prevPCR) <= prevPCR {
					t.Errorf("PCR %d after %d", pcr, prevPCR)
				}
				prevPCR = unwrap(pcr, prevPCR)
				pcrs++
			}
		}
		if afc&1 == 0 {
			continue
		}
		cc := int(p[3] & 0x0f)
		if l, ok := last[pid]; ok && cc != (l+1)%16 {
			t.Errorf("PID %#x: continuity counter %d after %d at %d", pid, cc, l, pos)
		}
		last[pid] = cc
	}
	return pcrs
}

func TestRecutStructure(t *testing.T) {
	for _, name := range structureInputs {
		in := input(t, name)
		inPMT := pmtOf(t, in)
		inPES := demuxPES(t, in, inPMT)
		want := esOf(inPES)
		ref := referenceAUs(t, inPMT, inPES)
		for _, pat := range Patterns() {
			t.Run(pat.Name+"/"+name, func(t *testing.T) {
				out, err := Recut(in, pat)
				if err != nil {
					t.Fatal(err)
				}
				again, _ := Recut(in, pat)
				if !bytes.Equal(out, again) {
					t.Error("two runs gave different bytes")
				}
				if pcrs := checkPackets(t, out, inPMT.PCRPID); pcrs == 0 {
					t.Error("no PCR")
				}
				pmt := pmtOf(t, out)
				ps := demuxPES(t, out, pmt)
				if pmt.PCRPID != inPMT.PCRPID || len(pmt.ElementaryStreams) != len(inPMT.ElementaryStreams) {
					t.Fatalf("PMT %+v, input's %+v", pmt, inPMT)
				}
				got := esOf(ps)
				for pid, es := range want {
					if !bytes.Equal(got[pid], es) {
						t.Errorf("PID %#x: elementary stream of %d bytes differs from the input's (%d bytes)", pid, len(got[pid]), len(es))
					}
				}
				checkTimestamps(t, pat, ps, ref, inPMT)
			})
		}
	}
}

// checkTimestamps checks each PES against the rules of ISO 13818-1 (a PTS only when an
// access unit starts in the PES, that of the first one; DTS when it differs; alignment
// flag only when the PES starts with an access unit) and against its pattern.
func checkTimestamps(t *testing.T, pat Pattern, ps []pes, ref map[uint16][]refAU, pmt *astits.PMTData) {
	t.Helper()
	off := map[uint16]int{}
	next := map[uint16]int{} // index of the first AU at or after off
	type stats struct{ pes, noPTS, lengthSet, tinyInHeader, midStart, withoutOwnPTS int }
	st := map[uint16]*stats{}
	for _, es := range pmt.ElementaryStreams {
		st[es.ElementaryPID] = &stats{}
	}
	video := func(pid uint16) bool {
		for _, es := range pmt.ElementaryStreams {
			if es.ElementaryPID == pid {
				return es.StreamType == astits.StreamTypeH264Video || es.StreamType == astits.StreamTypeH265Video
			}
		}
		return false
	}
	for i, p := range ps {
		aus, s := ref[p.pid], st[p.pid]
		start, end := off[p.pid], off[p.pid]+len(p.data)
		a := next[p.pid]
		var starting []refAU
		for a < len(aus) && aus[a].off < end {
			starting = append(starting, aus[a])
			a++
		}
		next[p.pid], off[p.pid] = a, end
		s.pes++
		if p.lengthSet {
			s.lengthSet++
		}
		if len(starting) > 1 {
			s.withoutOwnPTS += len(starting) - 1
		}
		where := fmt.Sprintf("PES %d (PID %#x, ES bytes %d..%d)", i, p.pid, start, end)
		if len(starting) == 0 {
			s.noPTS++
			if p.pts >= 0 || p.dts >= 0 || p.aligned {
				t.Errorf("%s: no access unit starts in it, yet PTS %d DTS %d aligned %v", where, p.pts, p.dts, p.aligned)
			}
			// Inside the first 7 bytes of an access unit (its ADTS header, its start code
			// and AUD)?
			if a > 0 && start > aus[a-1].off && end <= aus[a-1].off+7 {
				s.tinyInHeader++
			}
			continue
		}
		first := starting[0]
		wantDTS := int64(-1)
		if first.dts != first.pts {
			wantDTS = first.dts
		}
		if p.pts != first.pts || p.dts != wantDTS {
			t.Errorf("%s: PTS %d DTS %d, want those of the access unit at %d: %d %d", where, p.pts, p.dts, first.off, first.pts, wantDTS)
		}
		if p.aligned != (first.off == start) {
			t.Errorf("%s: data_alignment_indicator %v, the first access unit starts at %d", where, p.aligned, first.off)
		}
		if first.off != start {
			s.midStart++
		}
	}
	for pid, s := range st {
		if s.pes == 0 {
			continue
		}
		isVideo := video(pid)
		t.Logf("PID %#x: %d PES, %d without PTS, %d starting mid access unit, %d with PES_packet_length, %d inside an AU's first 7 bytes, %d access units without a PTS of their own",
			pid, s.pes, s.noPTS, s.midStart, s.lengthSet, s.tinyInHeader, s.withoutOwnPTS)
		if !isVideo && s.lengthSet != s.pes {
			t.Errorf("PID %#x: %d of %d audio PES have PES_packet_length 0", pid, s.pes-s.lengthSet, s.pes)
		}
		if isVideo && s.pes > 2 && (s.lengthSet == 0 || s.lengthSet == s.pes) {
			t.Errorf("PID %#x: %d of %d video PES have a PES_packet_length: want both forms", pid, s.lengthSet, s.pes)
		}
		switch pat.Kind {
		case KindApple:
			// Every PES but the first starts inside an access unit, and one starts in each;
			// a video PES holds one access unit start, so every video access unit has its
			// own timestamps.
			if s.midStart != s.pes-1 || s.noPTS != 0 || isVideo && s.withoutOwnPTS != 0 {
				t.Errorf("PID %#x (apple): %d of %d PES start mid access unit, %d without PTS, %d AUs without own PTS",
					pid, s.midStart, s.pes, s.noPTS, s.withoutOwnPTS)
			}
		case KindRandom:
			if len(ref[pid]) > 20 && s.tinyInHeader == 0 {
				t.Errorf("PID %#x (random): no PES inside the first bytes of an access unit", pid)
			}
		}
	}
}

// TestRecutFFmpeg: ffmpeg reads every re-cut segment as the original. It decodes the same
// pictures (in the same order) and the same number of audio frames at the same times,
// without an error. Video frame times are compared only when every access unit has a PTS
// of its own (apple): ffmpeg's parser gives an access unit that does not start a PES the
// PES's timestamps or none, and cannot do better with B-frames (it would have to work the
// picture order out of the slice headers), so for fixed and random it complains about
// the timestamps it guessed ("non monotonically increasing dts"), and only about those.
func TestRecutFFmpeg(t *testing.T) {
	testutil.Tool(t, "ffmpeg")
	testutil.Tool(t, "ffprobe")
	dir := t.TempDir()
	for _, name := range []string{"ts-h264-aac/hi/seg_000.ts", "ts-h264-aac/hi/seg_001.ts", "ts-h264-aac/hi/seg_002.ts", "ts-hevc-aac/seg_001.ts"} {
		in := input(t, name)
		orig := filepath.Join(dir, strings.ReplaceAll(name, "/", "_"))
		if err := os.WriteFile(orig, in, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, pat := range Patterns() {
			t.Run(pat.Name+"/"+name, func(t *testing.T) {
				t.Parallel()
				out, err := Recut(in, pat)
				if err != nil {
					t.Fatal(err)
				}
				recut := filepath.Join(dir, pat.Name+"_"+filepath.Base(orig))
				if err := os.WriteFile(recut, out, 0o644); err != nil {
					t.Fatal(err)
				}
				for _, kind := range []string{"v", "a"} {
					want, got := framePTS(t, orig, kind), framePTS(t, recut, kind)
					if len(want) != len(got) {
						t.Errorf("%s frames: %d, original %d", kind, len(got), len(want))
					} else if (kind == "a" || pat.Kind == KindApple) && !slices.Equal(want, got) {
						t.Errorf("%s frame times differ:\n got %v\nwant %v", kind, got, want)
					}
				}
				if want, got := pictures(t, orig), pictures(t, recut); !slices.Equal(want, got) {
					t.Errorf("decoded pictures differ from the original's (%d, original %d)", len(got), len(want))
				}
				msg, _ := exec.Command("ffmpeg", "-v", "error", "-i", recut, "-f", "null", "-").CombinedOutput()
				var errs []string
				for _, l := range strings.Split(strings.TrimSpace(string(msg)), "\n") {
					benign := pat.Kind != KindApple && (strings.Contains(l, "non monotonically increasing dts") || strings.Contains(l, "Last message repeated"))
					if l != "" && !benign {
						errs = append(errs, l)
					}
				}
				if len(errs) > 0 {
					t.Errorf("ffmpeg decoding printed:\n%s", strings.Join(errs, "\n"))
				}
			})
		}
	}
}

// framePTS lists the PTS of the decoded frames of the first video ("v") or audio ("a")
// stream.
func framePTS(t *testing.T, path, kind string) []string {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", kind+":0", "-show_entries", "frame=pts", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	return strings.Fields(string(out))
}

// pictures lists the MD5 of each decoded video frame, in output order.
func pictures(t *testing.T, path string) []string {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "quiet", "-i", path, "-map", "0:v", "-fps_mode", "passthrough", "-f", "framemd5", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg framemd5 %s: %v", path, err)
	}
	var sums []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Split(l, ","); len(f) >= 6 && !strings.HasPrefix(l, "#") {
			sums = append(sums, strings.TrimSpace(f[len(f)-1]))
		}
	}
	return sums
}

func TestPatternNamed(t *testing.T) {
	for _, p := range Patterns() {
		if got, err := PatternNamed(p.Name); err != nil || got != p {
			t.Errorf("PatternNamed(%q) = %+v, %v", p.Name, got, err)
		}
	}
	if _, err := PatternNamed("nope"); err == nil {
		t.Error("PatternNamed(nope): no error")
	}
}

func TestRecutRejects(t *testing.T) {
	in := input(t, "ts-h264-aac/hi/seg_000.ts")
	aligned, _ := Recut(in, Apple)
	for name, b := range map[string][]byte{
		"not whole packets": in[:len(in)-1],
		"no sync":           append([]byte{0}, in[1:]...),
		"already re-cut":    aligned, // a PES without PTS: not an aligned input
		"mp3 audio":         input(t, "ts-mp3/seg_000.ts"),
	} {
		if _, err := Recut(b, Fixed); !errors.Is(err, ErrInput) {
			t.Errorf("%s: error %v, want ErrInput", name, err)
		}
	}
}

func TestDeclareStream(t *testing.T) {
	in := input(t, "video-only/seg_000.ts")
	out, err := DeclareStream(in, TypeAAC, 0x102)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("%d bytes, input %d", len(out), len(in))
	}
	pmt := pmtOf(t, out) // go-astits checks the CRC32
	ps := demuxPES(t, out, pmt)
	if len(pmt.ElementaryStreams) != 2 {
		t.Fatalf("PMT %+v", pmt)
	}
	if es := pmt.ElementaryStreams[1]; es.ElementaryPID != 0x102 || es.StreamType != astits.StreamTypeAACAudio {
		t.Errorf("added entry %+v", es)
	}
	inPES := demuxPES(t, in, pmtOf(t, in))
	if !bytes.Equal(esOf(ps)[0x100], esOf(inPES)[0x100]) || len(esOf(ps)[0x102]) != 0 {
		t.Error("the media changed")
	}
	// The CRC of a section computed over the section and its CRC is 0.
	seg, err := Demux(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(seg.Streams) != 2 || len(seg.Streams[1].AUs) != 0 {
		t.Fatalf("streams %+v", seg.Streams)
	}
	for pos := 0; pos < len(out); pos += PacketSize {
		if p, _ := parsePacket(out[pos:], pos); p.pid == seg.PMTPID && p.pusi {
			sec, err := section(p.payload)
			if err != nil {
				t.Fatal(err)
			}
			if mpegcrc.Sum(sec) != 0 {
				t.Errorf("PMT at %d: bad CRC", pos)
			}
		}
	}
	if _, err := DeclareStream(in, TypeAAC, 0x100); err == nil {
		t.Error("declaring a PID in use: no error")
	}
}

func TestLose(t *testing.T) {
	in := input(t, "ts-h264-aac/hi/seg_001.ts")
	out, at, err := Lose(in, 0x100, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in)-3*PacketSize {
		t.Fatalf("%d bytes, want %d", len(out), len(in)-3*PacketSize)
	}
	if !bytes.Equal(out[:at*PacketSize], in[:at*PacketSize]) || !bytes.Equal(out[at*PacketSize:], in[(at+3)*PacketSize:]) {
		t.Error("not the input less 3 packets")
	}
	lost, _ := parsePacket(in[at*PacketSize:], 0)
	if lost.pid != 0x100 || lost.pusi || lost.discon {
		t.Errorf("lost packet %+v: want a packet of PID 0x100 inside a PES", lost)
	}
	if _, _, err := Lose(in, 0x100, 1000); err == nil {
		t.Error("losing more packets than the largest PES has: no error")
	}
}

func TestTruncate(t *testing.T) {
	for _, name := range []string{"ts-h264-aac/hi/seg_001.ts", "ts-hevc-aac/seg_001.ts"} {
		in := input(t, name)
		out, err := Truncate(in, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) >= len(in)*3/5 || len(out) <= len(in)*2/5 {
			t.Errorf("%s: %d bytes of %d kept, want about half", name, len(out), len(in))
		}
		checkPackets(t, out, 0x100)
		whole, _ := Demux(in)
		half, err := Demux(out) // every PES whole
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i, st := range half.Streams {
			w := whole.Streams[i]
			if !bytes.HasPrefix(w.ES, st.ES) || len(st.AUs) == 0 || len(st.AUs) >= len(w.AUs)*3/4 {
				t.Errorf("%s PID %#x: %d of %d access units kept, want the first ones, about half", name, st.PID, len(st.AUs), len(w.AUs))
			}
		}
	}
}
