package ts

import (
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// audioUnit is one AAC frame rebuilt from the ADTS stream.
type audioUnit struct {
	raw      []byte // raw_data_block, without the ADTS header; valid during the call
	config   mpeg4audio.AudioSpecificConfig
	pts      int64 // raw 33-bit, 90 kHz; only when stamped
	stamped  bool
	seg      int // the segment the frame started in
	duration int // PCM samples (1024)
}

// adtsES rebuilds AAC frames from an ADTS byte stream fed in pieces cut anywhere (a PES
// may end in the middle of a frame, the next beginning without a header). Each frame
// takes the timestamp of the PES it starts in (stamps.go), or none: the demuxer counts
// frames on from the last timestamp.
//
// Why by hand: mediacommon's ADTS decoder takes whole frames only (and no CRC).
type adtsES struct {
	on func(audioUnit) error

	buf    []byte // unparsed bytes from r on
	r      int
	base   int64 // stream offset of buf[r]
	stamps stamps
	seg    int

	started bool  // a frame started since the stream began
	lead    int64 // bytes before the first frame
	firstPES

	lost *losses
}

func (a *adtsES) kind() string { return "audio" }

func (a *adtsES) pes(has bool, pts, _ int64) {
	a.firstPES.next(a.base + int64(len(a.buf)-a.r))
	a.stamps.add(a.base+int64(len(a.buf)-a.r), has, pts, pts)
}

// adtsHeader is what the demuxer needs of an ADTS header.
type adtsHeader struct {
	size   int // header length (7, or 9 with CRC)
	frame  int // frame length, header included
	config mpeg4audio.AudioSpecificConfig
	blocks int // raw data blocks in the frame
}

// sampleRates of ISO 14496-3 by sampling_frequency_index.
var sampleRates = [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// parseADTSHeader reads the fixed and variable header at b (at least 7 bytes).
func parseADTSHeader(b []byte) (adtsHeader, bool) {
	var h adtsHeader
	if b[0] != 0xff || b[1]&0xf6 != 0xf0 { // sync word, layer 0
		return h, false
	}
	h.size = 7
	if b[1]&0x01 == 0 {
		h.size = 9
	}
	sri := int(b[2] >> 2 & 0x0f)
	if sri >= len(sampleRates) {
		return h, false
	}
	h.config = mpeg4audio.AudioSpecificConfig{
		Type:          mpeg4audio.ObjectType(b[2]>>6 + 1),
		SampleRate:    sampleRates[sri],
		ChannelConfig: b[2]&0x01<<2 | b[3]>>6,
	}
	h.frame = int(b[3]&0x03)<<11 | int(b[4])<<3 | int(b[5]>>5)
	h.blocks = int(b[6]&0x03) + 1
	return h, h.frame > h.size
}

// write adds elementary stream bytes and hands on the frames they complete.
func (a *adtsES) write(b []byte) error {
	if a.r > 0 && a.r >= len(a.buf)/2 {
		a.buf = a.buf[:copy(a.buf, a.buf[a.r:])]
		a.r = 0
	}
	a.buf = append(a.buf, b...)
	for len(a.buf)-a.r >= 7 {
		b := a.buf[a.r:]
		h, ok := parseADTSHeader(b)
		if !ok {
			n := 1 // resynchronise on the next sync word
			for n < len(b) && !(b[n] == 0xff && (n+1 == len(b) || b[n+1]&0xf6 == 0xf0)) {
				n++
			}
			a.skip(n, "audio bytes outside any ADTS frame")
			continue
		}
		if h.blocks != 1 {
			return &UnsupportedCodecError{Codec: fmt.Sprintf("ADTS frames of %d AAC raw data blocks", h.blocks), StreamType: 0x0f}
		}
		if len(b) < h.frame {
			break
		}
		pts, _, stamped := a.stamps.take(a.base, a.base+int64(h.size)-1, nil)
		u := audioUnit{raw: b[h.size:h.frame], config: h.config, pts: pts, stamped: stamped, seg: a.seg, duration: aacFrameSamples}
		a.r += h.frame
		a.base += int64(h.frame)
		a.started = true
		if err := a.on(u); err != nil {
			return err
		}
	}
	return nil
}

// skip passes n bytes that are no frame: lost, unless they come before the first frame
// and within the first PES (the stream may begin with the end of a frame that starts
// before it).
func (a *adtsES) skip(n int, what string) {
	lead := a.firstPES.within(a.started, a.base, int64(n))
	a.lead += lead
	if int64(n) > lead {
		a.lost.add(what, int64(n)-lead)
	}
	a.r += n
	a.base += int64(n)
}

// flush ends the stream: bytes left are an incomplete frame.
func (a *adtsES) flush() error {
	if rest := a.buf[a.r:]; len(rest) > 0 && !allFF(rest) {
		a.lost.add("audio bytes of an incomplete ADTS frame", int64(len(rest)))
	}
	a.base += int64(len(a.buf) - a.r)
	a.buf, a.r = a.buf[:0], 0
	a.stamps.reset()
	return nil
}

// lose says bytes of the stream are missing here: the frame in progress is dropped.
func (a *adtsES) lose() {
	if len(a.buf) > a.r {
		a.lost.add("audio frames cut by lost packets", 1)
	}
	a.base += int64(len(a.buf) - a.r)
	a.buf, a.r = a.buf[:0], 0
}

// allFF reports stuffing (0xFF bytes some muxers pad with).
func allFF(b []byte) bool {
	for _, c := range b {
		if c != 0xff {
			return false
		}
	}
	return true
}
