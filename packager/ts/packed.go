package ts

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/stream-downloads/caddy-stream-downloads/internal/id3"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// Packed audio (RFC 8216 §3.4): a segment is a run of ADTS AAC, AC-3, E-AC-3 or MPEG
// audio frames behind an ID3v2 tag whose PRIV frame gives the first frame's timestamp.
// It is read here, as an audio elementary stream with one timestamp per segment, so that
// it shares the timeline rules of TS audio (periods, jumps, counting frames on, losses).
// Origins name such segments .aac/.ac3/.ec3/.mp3, and sometimes .ts: the content
// decides.

// maxID3Tag bounds an ID3 tag read whole (tags of packed audio are tens of bytes;
// cover art may make one larger, which is refused rather than buffered).
const maxID3Tag = 1 << 20

// sniffPacked says whether a segment starting with head is packed audio rather than
// MPEG-TS.
func sniffPacked(head []byte) bool {
	if len(head) == 0 || head[0] == tsSyncByte {
		return false
	}
	return bytes.HasPrefix(head, []byte("ID3")) || packedSyntax(head) != nil
}

// packedSyntax is the frame syntax of the audio that starts at head, or nil.
func packedSyntax(head []byte) frameSyntax {
	if len(head) < 2 {
		return nil
	}
	for _, k := range []streamKind{kindAAC, kindAC3, kindMPEGAudio} {
		if s := newFrameSyntax(k, nil); s.syncAt(head) {
			return s
		}
	}
	return nil
}

// readPacked reads one packed audio segment.
func (d *Demuxer) readPacked(br *bufio.Reader) error {
	if d.pes.lastPMT != nil {
		return d.malformed("a packed audio segment in an MPEG-TS stream")
	}
	pts, stamped, err := readID3(br)
	if err != nil {
		return d.malformed("packed audio: %v", err)
	}
	head, _ := br.Peek(4)
	syn := packedSyntax(head)
	if syn == nil {
		if len(head) == 0 {
			return nil // an empty segment: the coverage check says what it lacks
		}
		return d.malformed("packed audio: the segment holds no ADTS, AC-3, E-AC-3 or MPEG audio frame after its ID3 tag (it starts with % x)", head)
	}
	if !d.packed {
		d.packed = true
		d.declared = []media.Kind{media.Audio}
		d.segA = true
		d.aES.syn = syn
		d.audioType = 0
	} else if fmt.Sprintf("%T", syn) != fmt.Sprintf("%T", d.aES.syn) {
		return unsupportedErr(fmt.Sprintf("packed audio switching from %s to %s", d.aES.syn.name(), syn.name()), 0, false)
	}
	if !stamped && !d.audioStarted {
		// RFC 8216 requires the timestamp; without it, the playlist says where it starts.
		pts, stamped = durationTo90k(d.seg.Start)%(1<<33), true
		d.note("packed audio segment %d has no ID3 timestamp (%s): placed where the playlist says", d.segIndex-1, id3.TimestampOwner)
	}
	d.aES.pes(stamped, pts, pts)
	buf := d.pes.rb
	if buf == nil {
		buf = make([]byte, 512*tsPacketSize)
		d.pes.rb = buf
	}
	for {
		n, err := br.Read(buf)
		if n > 0 {
			if werr := d.aES.write(buf[:n]); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readID3 reads the ID3v2 tags at the start of br and returns the timestamp of the
// PRIV frame of id3.TimestampOwner (33 bits, 90 kHz), if one has it.
func readID3(br *bufio.Reader) (pts int64, ok bool, err error) {
	for {
		hdr, _ := br.Peek(id3.HeaderLen)
		if !bytes.HasPrefix(hdr, []byte("ID3")) {
			return pts, ok, nil
		}
		n, err := id3.TagLen(hdr)
		if err != nil {
			return 0, false, err
		}
		if n > maxID3Tag {
			return 0, false, fmt.Errorf("an ID3 tag of %d bytes (more than %d)", n, maxID3Tag)
		}
		tag := make([]byte, n)
		if _, err := io.ReadFull(br, tag); err != nil {
			return 0, false, errors.New("the ID3 tag is cut short")
		}
		if t, found := id3.Timestamp(tag); found {
			pts, ok = t, true
		}
	}
}
