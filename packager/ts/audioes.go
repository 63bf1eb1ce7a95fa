package ts

import (
	"bytes"
	"fmt"

	"github.com/stream-downloads/caddy-stream-downloads/packager/codec"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// audioFormat is what a frame says of its stream: the sample entry's facts.
type audioFormat struct {
	codec      media.Codec
	sampleRate int
	channels   int
	objectType uint8  // MPEG audio: esds objectTypeIndication
	frameDur   uint32 // PCM samples of every frame when fixed; 0: varies (Opus)
	// key holds the codec parameters that may not change mid-stream (a new sample
	// entry would be needed); not the bitrate, which may.
	key string
}

// audioFrame is one frame of an audio byte stream, as a frameSyntax reads it.
type audioFrame struct {
	payload []byte // what the MP4 stores of the frame (a part of it, or all)
	hdr     int    // length of its header: a PES starting inside it may lend its timestamps
	samples int    // PCM samples it lasts, at format.sampleRate
	format  audioFormat
	config  []byte // the sample entry's decoder configuration (media.Track.Config)

	// E-AC-3: syncframes are joined into units of 1536 samples with the dependent
	// substreams that follow them (ETSI TS 102 366 F.6); ac3 is this frame's header.
	joins bool
	ac3   codec.AC3Header
}

// lenStatus says what the start of a buffer is.
type lenStatus int

const (
	lenOK   lenStatus = iota // a frame header: the length is known
	lenNeed                  // too short to tell
	lenBad                   // not a frame header
)

// frameSyntax is how one audio codec's frames sit in a byte stream.
type frameSyntax interface {
	// name names the frames for messages ("ADTS frame").
	name() string
	// syncAt says whether a frame may start at b[0] (b holds at least one byte; a
	// second one is checked when there is one).
	syncAt(b []byte) bool
	// length reads the header at b: the frame's whole length.
	length(b []byte) (int, lenStatus)
	// frame reads one whole frame; ok is false when it is not one after all (a damaged
	// frame, a false sync word). An error ends the stream (an unsupported variant).
	frame(f []byte) (fr audioFrame, ok bool, err error)
}

// maxAudioFrame bounds a frame of any audio codec read here: far above the largest
// legal one (an ADTS frame is at most 8 KiB, an E-AC-3 syncframe 4 KiB, an Opus packet
// of 120 ms about 8 KiB), so a stream claiming more is malformed, not buffered.
const maxAudioFrame = 64 << 10

// audioUnit is one unit for the MP4 (one frame; for E-AC-3 the syncframes of 1536
// samples) rebuilt from the byte stream.
type audioUnit struct {
	data    []byte // valid during the call
	format  audioFormat
	config  []byte
	pts     int64 // raw 33-bit, 90 kHz; only when stamped
	stamped bool
	seg     int // the segment the unit started in
	samples int
}

// audioES rebuilds audio frames from a byte stream fed in pieces cut anywhere (a PES
// may end in the middle of a frame, the next beginning without a header). Each frame
// takes the timestamp of the PES it starts in (stamps.go), or none: the demuxer counts
// frames on from the last timestamp.
//
// Why by hand: mediacommon's ADTS decoder takes whole frames only (and no CRC), and it
// has no AC-3, MPEG audio or Opus framing.
type audioES struct {
	on  func(audioUnit) error
	syn frameSyntax

	buf    []byte // unparsed bytes from r on
	r      int
	base   int64 // stream offset of buf[r]
	stamps stamps
	seg    int

	// E-AC-3 unit in progress.
	unit    []byte
	unitHdr []codec.AC3Header
	unitSmp int
	unitPTS int64
	unitStm bool
	unitSeg int

	started bool  // a frame started since the stream began
	lead    int64 // bytes before the first frame
	firstPES

	lost *losses
}

func (a *audioES) kind() string { return "audio" }

func (a *audioES) pes(has bool, pts, _ int64) {
	a.firstPES.next(a.base + int64(len(a.buf)-a.r))
	a.stamps.add(a.base+int64(len(a.buf)-a.r), has, pts, pts)
}

// write adds elementary stream bytes and hands on the frames they complete.
func (a *audioES) write(b []byte) error {
	if a.r > 0 && a.r >= len(a.buf)/2 {
		a.buf = a.buf[:copy(a.buf, a.buf[a.r:])]
		a.r = 0
	}
	a.buf = append(a.buf, b...)
	for len(a.buf) > a.r {
		b := a.buf[a.r:]
		if a.syn.syncAt(b) {
			l, st := a.syn.length(b)
			if st == lenOK && (l <= 0 || l > maxAudioFrame) {
				st = lenBad
			}
			if st == lenNeed || (st == lenOK && len(b) < l) {
				return nil // the rest of the header or frame comes later
			}
			if st == lenOK {
				fr, ok, err := a.syn.frame(b[:l])
				if err != nil {
					return err
				}
				if ok {
					if err := a.take(fr, l); err != nil {
						return err
					}
					continue
				}
			}
		}
		a.resync(b)
	}
	return nil
}

// resync skips to the next place a frame may start.
func (a *audioES) resync(b []byte) {
	n := 1
	for n < len(b) && !a.syn.syncAt(b[n:]) {
		n++
	}
	a.skip(n, "audio bytes outside any "+a.syn.name())
}

// take hands on frame fr, l bytes at buf[r].
func (a *audioES) take(fr audioFrame, l int) error {
	pts, _, stamped := a.stamps.take(a.base, a.base+int64(max(fr.hdr, 1))-1, nil)
	start := a.base
	a.r += l
	a.base += int64(l)
	a.started = true
	if !fr.joins {
		return a.on(audioUnit{data: fr.payload, format: fr.format, config: fr.config, pts: pts, stamped: stamped, seg: a.seg, samples: fr.samples})
	}
	// E-AC-3: an independent substream 0 frame starts a unit once the one in progress
	// has its 1536 samples; dependent substreams and further substreams belong to it.
	part := fr.ac3.StreamType == 1 || fr.ac3.SubstreamID != 0
	if !part && (a.unitSmp == 0 || a.unitSmp >= eac3UnitSamples) {
		if err := a.flushUnit(); err != nil {
			return err
		}
		a.unitPTS, a.unitStm, a.unitSeg = pts, stamped, a.seg
	} else if len(a.unit) == 0 {
		// A part with no unit to join: the stream began inside a unit.
		lead := a.firstPES.within(false, start, int64(l))
		a.lead += lead
		if int64(l) > lead {
			a.lost.add("E-AC-3 substreams without their independent substream", int64(l)-lead)
		}
		return nil
	}
	if len(a.unit)+len(fr.payload)+(len(a.unitHdr)+1)*eac3FrameOverhead > maxEAC3Unit {
		return fmt.Errorf("an E-AC-3 unit of more than %d MiB (substreams that no independent substream ends)", maxEAC3Unit>>20)
	}
	a.unit = append(a.unit, fr.payload...)
	a.unitHdr = append(a.unitHdr, fr.ac3)
	if !part {
		a.unitSmp += fr.samples
	}
	return nil
}

// eac3UnitSamples is the length of an E-AC-3 sample in an MP4: six blocks of 256.
const eac3UnitSamples = 1536

// maxEAC3Unit bounds an E-AC-3 unit being joined, each syncframe counted with its header
// kept (eac3FrameOverhead): E-AC-3's highest bit rate, 6.144 Mb/s, makes at most 37 KB a
// unit (1536 samples at 32 kHz), so dependent substreams that never meet the next
// independent one are not media but a stream that must not grow memory.
const (
	maxEAC3Unit       = 1 << 20
	eac3FrameOverhead = 64
)

// flushUnit hands on the E-AC-3 unit in progress.
func (a *audioES) flushUnit() error {
	if len(a.unit) == 0 {
		return nil
	}
	f, cfg := eac3Format(a.unitHdr)
	u := audioUnit{data: a.unit, format: f, config: cfg, pts: a.unitPTS, stamped: a.unitStm, seg: a.unitSeg, samples: a.unitSmp}
	a.unit, a.unitHdr, a.unitSmp = a.unit[:0], a.unitHdr[:0], 0
	return a.on(u)
}

// skip passes n bytes that are no frame: lost, unless they come before the first frame
// and within the first PES (the stream may begin with the end of a frame that starts
// before it).
func (a *audioES) skip(n int, what string) {
	lead := a.firstPES.within(a.started, a.base, int64(n))
	a.lead += lead
	if int64(n) > lead {
		a.lost.add(what, int64(n)-lead)
	}
	a.r += n
	a.base += int64(n)
}

// flush ends the stream: bytes left are an incomplete frame.
func (a *audioES) flush() error {
	if rest := a.buf[a.r:]; len(rest) > 0 && !allFF(rest) {
		a.lost.add(fmt.Sprintf("audio bytes of an incomplete %s", a.syn.name()), int64(len(rest)))
	}
	a.base += int64(len(a.buf) - a.r)
	a.buf, a.r = a.buf[:0], 0
	a.stamps.reset()
	return a.flushUnit()
}

// lose says bytes of the stream are missing here: the frame in progress is dropped.
func (a *audioES) lose() {
	if len(a.buf) > a.r || len(a.unit) > 0 {
		a.lost.add("audio frames cut by lost packets", 1)
	}
	// An E-AC-3 unit in progress may have lost its dependent substreams.
	a.unit, a.unitHdr, a.unitSmp = a.unit[:0], a.unitHdr[:0], 0
	a.base += int64(len(a.buf) - a.r)
	a.buf, a.r = a.buf[:0], 0
}

// allFF reports stuffing (0xFF bytes some muxers pad with).
func allFF(b []byte) bool {
	return len(bytes.Trim(b, "\xff")) == 0
}
