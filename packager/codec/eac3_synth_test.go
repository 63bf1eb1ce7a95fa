package codec

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/Eyevinn/mp4ff/mp4"
)

// eac3Spec is an E-AC-3 bsi() to build bit by bit, as TS 102 366 E.1.2.2 lays it out,
// for what ffmpeg's encoder never writes: dependent substreams, chanmaps, all the
// metadata, addbsi with the JOC extension (TS 103 420).
type eac3Spec struct {
	strmtyp, substreamid, fscod, fscod2, numblkscod, acmod uint32
	lfe                                                    bool
	chanmap                                                int // -1: chanmape 0
	mix, info                                              bool
	mixdef                                                 uint32
	addbsi                                                 []byte
	words                                                  int // frame size in 16-bit words
}

// alt writes n bits of a 1010... pattern, so a field skipped with the wrong width
// shows up as a misread of what follows.
func alt(w *bitWriter, n int) {
	for i := 0; i < n; i++ {
		w.put(uint32(i&1^1), 1)
	}
}

func (s eac3Spec) frame() []byte {
	var w bitWriter
	w.put(0x0B77, 16)
	w.put(s.strmtyp, 2)
	w.put(s.substreamid, 3)
	w.put(uint32(s.words-1), 11)
	w.put(s.fscod, 2)
	blocks := 6
	if s.fscod == 3 {
		w.put(s.fscod2, 2)
	} else {
		w.put(s.numblkscod, 2)
		blocks = []int{1, 2, 3, 6}[s.numblkscod]
	}
	w.put(s.acmod, 3)
	w.put(b2u(s.lfe), 1)
	w.put(16, 5) // bsid
	alt(&w, 5)   // dialnorm
	w.put(1, 1)  // compre
	alt(&w, 8)
	if s.acmod == 0 {
		alt(&w, 5)
		w.put(1, 1) // compr2e
		alt(&w, 8)
	}
	if s.strmtyp == 1 {
		if s.chanmap >= 0 {
			w.put(1, 1)
			w.put(uint32(s.chanmap), 16)
		} else {
			w.put(0, 1)
		}
	}
	w.put(b2u(s.mix), 1) // mixmdate
	if s.mix {
		if s.acmod > 2 {
			alt(&w, 2)
		}
		if s.acmod&1 == 1 && s.acmod > 2 {
			alt(&w, 6)
		}
		if s.acmod&4 != 0 {
			alt(&w, 6)
		}
		if s.lfe {
			w.put(1, 1)
			alt(&w, 5)
		}
		if s.strmtyp == 0 {
			w.put(1, 1) // pgmscle
			alt(&w, 6)
			if s.acmod == 0 {
				w.put(1, 1)
				alt(&w, 6)
			}
			w.put(1, 1) // extpgmscle
			alt(&w, 6)
			w.put(s.mixdef, 2)
			switch s.mixdef {
			case 1:
				alt(&w, 5)
			case 2:
				alt(&w, 12)
			case 3: // mixdeflen, then (mixdeflen+2) bytes
				w.put(2, 5)
				alt(&w, 32)
			}
			if s.acmod < 2 {
				w.put(1, 1) // paninfoe
				alt(&w, 14)
				if s.acmod == 0 {
					w.put(1, 1)
					alt(&w, 14)
				}
			}
			w.put(1, 1) // frmmixcfginfoe
			if blocks == 1 {
				alt(&w, 5)
			} else {
				for i := 0; i < blocks; i++ {
					w.put(uint32(i&1), 1) // every other block has blkmixcfginfo
					if i&1 == 1 {
						alt(&w, 5)
					}
				}
			}
		}
	}
	w.put(b2u(s.info), 1) // infomdate
	if s.info {
		w.put(5, 3) // bsmod
		alt(&w, 2)
		if s.acmod == 2 {
			alt(&w, 4)
		}
		if s.acmod >= 6 {
			alt(&w, 2)
		}
		w.put(1, 1) // audprodie
		alt(&w, 8)
		if s.acmod == 0 {
			w.put(1, 1)
			alt(&w, 8)
		}
		if s.fscod < 3 {
			alt(&w, 1)
		}
	}
	if s.strmtyp == 0 && s.fscod != 3 && s.numblkscod != 3 {
		alt(&w, 1) // convsync
	}
	if s.strmtyp == 2 {
		if s.fscod == 3 || s.numblkscod == 3 {
			alt(&w, 6) // blkid is implied
		} else {
			w.put(1, 1)
			alt(&w, 6)
		}
	}
	if len(s.addbsi) > 0 {
		w.put(1, 1)
		w.put(uint32(len(s.addbsi)-1), 6)
		for _, b := range s.addbsi {
			w.put(uint32(b), 8)
		}
	} else {
		w.put(0, 1)
	}
	f := make([]byte, s.words*2)
	copy(f, w.b)
	crc := ac3CRC(f[2 : len(f)-2])
	f[len(f)-2], f[len(f)-1] = byte(crc>>8), byte(crc)
	return f
}

func TestEAC3Synthetic(t *testing.T) {
	for _, c := range []struct {
		name string
		spec eac3Spec
		want AC3Header
	}{
		{"5.1 JOC, all metadata", eac3Spec{acmod: 7, lfe: true, numblkscod: 3, chanmap: -1, mix: true, mixdef: 3, info: true, addbsi: []byte{0x01, 16}, words: 128},
			AC3Header{SampleRate: 48000, Samples: 1536, Channels: 6, Acmod: 7, LFE: true, Bsmod: 5, JOC: true, ComplexityIndex: 16}},
		{"JOC flag without complexity byte", eac3Spec{acmod: 7, lfe: true, numblkscod: 3, chanmap: -1, addbsi: []byte{0xff}, words: 64},
			AC3Header{SampleRate: 48000, Samples: 1536, Channels: 6, Acmod: 7, LFE: true, JOC: true}},
		{"addbsi without JOC", eac3Spec{acmod: 2, numblkscod: 3, chanmap: -1, mix: true, info: true, addbsi: []byte{0x02, 16, 7}, words: 64},
			AC3Header{SampleRate: 48000, Samples: 1536, Channels: 2, Acmod: 2, Bsmod: 5}},
		{"dual mono, 1 block", eac3Spec{acmod: 0, numblkscod: 0, chanmap: -1, mix: true, mixdef: 1, info: true, addbsi: []byte{0x01, 3}, words: 64},
			AC3Header{SampleRate: 48000, Samples: 256, Channels: 2, Bsmod: 5, JOC: true, ComplexityIndex: 3}},
		{"mono 44.1k, 2 blocks, substream 2", eac3Spec{fscod: 1, acmod: 1, substreamid: 2, numblkscod: 1, chanmap: -1, mix: true, mixdef: 2, info: true, addbsi: []byte{0x01, 4}, words: 64},
			AC3Header{SampleRate: 44100, Samples: 512, Channels: 1, Acmod: 1, Bsmod: 5, SubstreamID: 2, JOC: true, ComplexityIndex: 4}},
		{"3/1 32k, 3 blocks", eac3Spec{fscod: 2, acmod: 5, lfe: true, numblkscod: 2, chanmap: -1, mix: true, mixdef: 3, info: true, addbsi: []byte{0x01, 5}, words: 64},
			AC3Header{SampleRate: 32000, Samples: 768, Channels: 5, Acmod: 5, LFE: true, Bsmod: 5, JOC: true, ComplexityIndex: 5}},
		{"reduced rate 22.05k", eac3Spec{fscod: 3, fscod2: 1, acmod: 2, chanmap: -1, mix: true, info: true, addbsi: []byte{0x01, 6}, words: 64},
			AC3Header{SampleRate: 22050, Samples: 1536, Channels: 2, Acmod: 2, Bsmod: 5, Fscod: 3, JOC: true, ComplexityIndex: 6}},
		{"converted from AC-3, 1 block", eac3Spec{strmtyp: 2, acmod: 6, numblkscod: 0, chanmap: -1, mix: true, info: true, addbsi: []byte{0x01, 7}, words: 64},
			AC3Header{SampleRate: 48000, Samples: 256, Channels: 4, Acmod: 6, Bsmod: 5, StreamType: 2, JOC: true, ComplexityIndex: 7}},
		{"converted from AC-3, 6 blocks", eac3Spec{strmtyp: 2, acmod: 3, numblkscod: 3, chanmap: -1, info: true, addbsi: []byte{0x01, 8}, words: 64},
			AC3Header{SampleRate: 48000, Samples: 1536, Channels: 3, Acmod: 3, Bsmod: 5, StreamType: 2, JOC: true, ComplexityIndex: 8}},
		{"dependent with chanmap", eac3Spec{strmtyp: 1, acmod: 2, numblkscod: 3, chanmap: 1 << 9, mix: true, info: true, addbsi: []byte{0x01, 9}, words: 64},
			AC3Header{SampleRate: 48000, Samples: 1536, Channels: 2, Acmod: 2, Bsmod: 5, StreamType: 1, ChanMap: 1 << 9, HasChanMap: true, JOC: true, ComplexityIndex: 9}},
		{"dependent without chanmap", eac3Spec{strmtyp: 1, acmod: 4, numblkscod: 3, chanmap: -1, mix: true, words: 64},
			AC3Header{SampleRate: 48000, Samples: 1536, Channels: 3, Acmod: 4, StreamType: 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := c.spec.frame()
			h, err := ParseAC3(f)
			if err != nil {
				t.Fatal(err)
			}
			c.want.EAC3, c.want.Bsid, c.want.FrameSize = true, 16, len(f)
			if c.want.Fscod == 0 {
				c.want.Fscod = uint8(c.spec.fscod)
			}
			c.want.BitRate = c.want.FrameSize * 8 * c.want.SampleRate / c.want.Samples
			if h != c.want {
				t.Errorf("got  %+v\nwant %+v", h, c.want)
			}
			f[len(f)/2] ^= 1
			if _, err := ParseAC3(f); err == nil {
				t.Error("no CRC error for a corrupt frame")
			}
		})
	}
	// A bsi longer than its frame is an error, not a panic or a guess.
	long := eac3Spec{acmod: 7, numblkscod: 3, chanmap: -1, mix: true, mixdef: 3, info: true, addbsi: make([]byte, 64), words: 20}
	if h, err := ParseAC3(long.frame()[:40]); err == nil {
		t.Errorf("bsi past the frame end: %+v", h)
	}
}

// TestDEC3 builds the access unit of a 7.1 stream with Atmos — 5.1 independent
// substream with JOC, dependent substream with the Lrs/Rrs pair — and checks the dec3
// bytes by hand and against mp4ff's encoder, then reads them back.
func TestDEC3(t *testing.T) {
	ind, err := ParseAC3(eac3Spec{acmod: 7, lfe: true, numblkscod: 3, chanmap: -1, info: true, addbsi: []byte{0x01, 16}, words: 384}.frame())
	if err != nil {
		t.Fatal(err)
	}
	dep, err := ParseAC3(eac3Spec{strmtyp: 1, acmod: 2, numblkscod: 3, chanmap: 1 << 9, words: 128}.frame())
	if err != nil {
		t.Fatal(err)
	}
	au := []AC3Header{ind, dep}
	got := DEC3(au, 1024)
	// data_rate 1024, num_ind_sub 0 | fscod 0, bsid 16, 0, asvc 0, bsmod 5, acmod 7,
	// lfeon 1 | reserved, num_dep_sub 1, chan_loc Lrs/Rrs (bit 1) | JOC, complexity 16
	want, _ := hex.DecodeString("2000" + "205f" + "0202" + "0110")
	if !bytes.Equal(got, want) {
		t.Errorf("dec3 %x, want %x", got, want)
	}
	box := &mp4.Dec3Box{DataRate: 1024, EC3Subs: []mp4.EC3Sub{{BSID: 16, BSMod: 5, ACMod: 7, LFEOn: 1, NumDepSub: 1, ChanLoc: 2}}, JOCComplexity: 16}
	var buf bytes.Buffer
	if err := box.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes()[8:], got) {
		t.Errorf("mp4ff encodes %x", buf.Bytes()[8:])
	}
	if n := EAC3Channels(au); n != 8 {
		t.Errorf("EAC3Channels %d, want 8", n)
	}
	cfg, err := ParseDEC3(got)
	if err != nil || cfg != (AC3Config{SampleRate: 48000, Channels: 8, JOC: true, ComplexityIndex: 16}) {
		t.Errorf("ParseDEC3: %+v, %v", cfg, err)
	}
	// Without JOC the extension is left out, and the reader sees none.
	au[0].JOC = false
	if got := DEC3(au, 1024); len(got) != 6 {
		t.Errorf("dec3 without JOC: %x", got)
	} else if cfg, _ := ParseDEC3(got); cfg.JOC {
		t.Error("ParseDEC3 found JOC in a dec3 without the extension")
	}
}

func TestDEC3Programs(t *testing.T) {
	h := func(strmtyp, acmod uint8, lfe bool, chanmap int) AC3Header {
		return AC3Header{EAC3: true, StreamType: strmtyp, Acmod: acmod, LFE: lfe, Bsid: 16,
			Channels: acmodChannels[acmod] + int(b2u(lfe)), ChanMap: uint16(chanmap), HasChanMap: chanmap >= 0}
	}
	sub := func(x AC3Header, id uint8) AC3Header { x.SubstreamID = id; return x }
	for _, c := range []struct {
		name     string
		au       []AC3Header
		dec3     string
		channels int
	}{
		{"none", nil, "", 0},
		{"only a dependent", []AC3Header{h(1, 2, false, -1)}, "", 0},
		{"5.1 + Lrs/Rrs + Lw/Rw + LFE2", []AC3Header{h(0, 7, true, -1), h(1, 2, false, 1<<9), h(1, 6, false, locL|locR|1<<5|1<<1)},
			"0040" + "200f" + "0522", 11},
		{"5.1 + L R Ls Rs Lrs/Rrs (7.1 replacing surrounds)", []AC3Header{h(0, 7, true, -1), h(1, 6, false, locLs|locRs|1<<9)},
			"0040" + "200f" + "0202", 8},
		{"Lts/Rts counts but has no chan_loc bit", []AC3Header{h(0, 7, true, -1), h(1, 2, false, 1<<2)},
			"0040" + "200f" + "0200", 8},
		{"dependent without chanmap", []AC3Header{h(0, 7, true, -1), h(1, 4, false, -1)},
			"0040" + "200f" + "0200", 6},
		{"eight programs, then substream 0 again", []AC3Header{h(0, 1, false, -1), sub(h(0, 1, false, -1), 1), sub(h(0, 1, false, -1), 2),
			sub(h(0, 1, false, -1), 3), sub(h(0, 1, false, -1), 4), sub(h(0, 1, false, -1), 5), sub(h(0, 1, false, -1), 6),
			sub(h(0, 1, false, -1), 7), h(0, 1, false, -1)},
			"0047" + strings.Repeat("200200", 8), 1},
		{"three 2-block syncframes of 5.1 + Lrs/Rrs", []AC3Header{h(0, 7, true, -1), h(1, 2, false, 1<<9),
			h(0, 7, true, -1), h(1, 2, false, 1<<9), h(0, 7, true, -1), h(1, 2, false, 1<<9)},
			"0040" + "200f" + "0202", 8},
		{"two programs", []AC3Header{h(0, 2, false, -1), sub(h(2, 1, false, -1), 1), h(1, 2, false, 1<<8)},
			"0041" + "200400" + "20020204", 2},
		{"AC-3 core + E-AC-3 dependent", []AC3Header{{Bsid: 8, Acmod: 7, LFE: true, Channels: 6}, h(1, 2, false, 1<<9)},
			"0040" + "100f" + "0202", 8},
	} {
		want, _ := hex.DecodeString(c.dec3)
		if got := DEC3(c.au, 8); !bytes.Equal(got, want) {
			t.Errorf("%s: dec3 %x, want %x", c.name, got, want)
		}
		if n := EAC3Channels(c.au); n != c.channels {
			t.Errorf("%s: %d channels, want %d", c.name, n, c.channels)
		}
	}
}

func TestDAC3(t *testing.T) {
	h := AC3Header{Fscod: 1, Bsid: 6, Bsmod: 7, Acmod: 5, LFE: true, BitRateCode: 18}
	box := &mp4.Dac3Box{FSCod: 1, BSID: 6, BSMod: 7, ACMod: 5, LFEOn: 1, BitRateCode: 18}
	var buf bytes.Buffer
	if err := box.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	if got := DAC3(h); !bytes.Equal(got, buf.Bytes()[8:]) {
		t.Errorf("dac3 %x, mp4ff encodes %x", got, buf.Bytes()[8:])
	}
	if cfg, err := ParseDAC3(DAC3(h)); err != nil || cfg != (AC3Config{SampleRate: 44100, Channels: 5}) {
		t.Errorf("ParseDAC3: %+v, %v", cfg, err)
	}
	for name, p := range map[string]string{"short": "1008", "fscod 3": "d00880", "bsid 9": "120880"} {
		b, _ := hex.DecodeString(p)
		if cfg, err := ParseDAC3(b); err == nil {
			t.Errorf("%s: %+v", name, cfg)
		}
	}
	for name, p := range map[string]string{"empty": "", "short": "0600200f", "cut chan_loc": "0600200f02", "second substream cut": "0601200f00", "bsid 17": "0600220f00"} {
		b, _ := hex.DecodeString(p)
		if cfg, err := ParseDEC3(b); err == nil {
			t.Errorf("dec3 %s: %+v", name, cfg)
		}
	}
}
