package testutil

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/id3"
)

// Media that does not fit its playlist (issue 12 point 2): segments of millions of tiny
// frames, timestamps that jump by hours inside a segment.

// FloodFrame is the ADTS frame a FloodOrigin repeats: 9 bytes (a 7-byte header without
// CRC, AAC LC, 48 kHz, stereo, and 2 bytes of payload), each taken by a demuxer as 1024
// samples (21.3 ms) of audio.
var FloodFrame = []byte{0xff, 0xf1, 0x4c, 0x80, 0x01, 0x3f, 0xfc, 0x21, 0x10}

// Flood is an origin handler that serves, for any video, a VOD media playlist (any path
// ending in .m3u8) of Segments packed-audio AAC segments (RFC 8216 §3.4) of EXTINF 4 s,
// each an ID3 timestamp tag followed by Size bytes of FloodFrame: a segment that says
// 4 s and holds Size/9 frames (100 MB: 11.6 million frames, 69 hours). The segments are
// made as they are sent, never held in memory, and the bytes sent are counted.
type Flood struct {
	Segments int
	Size     int64 // bytes of frames per segment, rounded down to whole frames
	sent     atomic.Int64
	requests atomic.Int64
}

// Sent is the number of segment bytes read to be sent to clients so far.
func (o *Flood) Sent() int64 { return o.sent.Load() }

// Requests is the number of segment requests so far.
func (o *Flood) Requests() int64 { return o.requests.Load() }

const floodExtinf = 4 * time.Second

// ServeHTTP serves the playlist and the segments.
func (o *Flood) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasSuffix(r.URL.Path, ".m3u8"):
		var b strings.Builder
		fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:%d\n#EXT-X-PLAYLIST-TYPE:VOD\n", int(floodExtinf.Seconds()))
		for i := range o.Segments {
			fmt.Fprintf(&b, "#EXTINF:%.3f,\nseg_%03d.aac\n", floodExtinf.Seconds(), i)
		}
		b.WriteString("#EXT-X-ENDLIST\n")
		w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		w.Write([]byte(b.String()))
	case strings.HasSuffix(r.URL.Path, ".aac"):
		var i int
		if _, err := fmt.Sscanf(r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:], "seg_%03d.aac", &i); err != nil || i < 0 || i >= o.Segments {
			http.NotFound(w, r)
			return
		}
		o.requests.Add(1)
		// 1.4 s (where ffmpeg starts its streams) plus the segments before, at 90 kHz.
		f := &floodFile{o: o, tag: id3.TimestampTag(126000 + int64(i)*int64(floodExtinf.Seconds())*90000)}
		f.size = int64(len(f.tag)) + o.Size/int64(len(FloodFrame))*int64(len(FloodFrame))
		w.Header().Set("Content-Type", "audio/aac")
		http.ServeContent(w, r, "", time.Time{}, f) // Range requests as a static origin answers them
	default:
		http.NotFound(w, r)
	}
}

// floodFile is one segment of a Flood, made as it is read.
type floodFile struct {
	o         *Flood
	tag       []byte
	size, off int64
}

func (f *floodFile) Read(p []byte) (int, error) {
	if f.off >= f.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), f.size-f.off)]
	for i := range p {
		if k := f.off + int64(i); k < int64(len(f.tag)) {
			p[i] = f.tag[k]
		} else {
			p[i] = FloodFrame[(k-int64(len(f.tag)))%int64(len(FloodFrame))]
		}
	}
	f.off += int64(len(p))
	f.o.sent.Add(int64(len(p)))
	return len(p), nil
}

func (f *floodFile) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.off
	case io.SeekEnd:
		offset += f.size
	}
	if offset < 0 {
		return 0, errors.New("seek before the start")
	}
	f.off = offset
	return offset, nil
}

// ShiftTimestamps returns seg (a whole MPEG-TS segment) with by (90 kHz ticks) added to
// the PTS and DTS of every PES that starts at packet index from or later, and to the PCR
// of those packets, modulo 2^33 as a muxer would write them: a timestamp jump inside
// the segment (from > 0) or from its start (from 0).
func ShiftTimestamps(t testing.TB, seg []byte, from int, by int64) []byte {
	t.Helper()
	if len(seg)%188 != 0 {
		t.Fatalf("ShiftTimestamps: %d bytes is not a whole number of TS packets", len(seg))
	}
	out := append([]byte(nil), seg...)
	const wrap = 1 << 33
	shift := func(b []byte) { // a 5-byte PTS or DTS field, its marker bits kept
		v := int64(b[0]>>1&0x07)<<30 | int64(b[1])<<22 | int64(b[2]>>1)<<15 | int64(b[3])<<7 | int64(b[4]>>1)
		v = ((v+by)%wrap + wrap) % wrap
		b[0] = b[0]&0xf1 | byte(v>>29)&0x0e
		b[1] = byte(v >> 22)
		b[2] = byte(v>>14) | 1
		b[3] = byte(v >> 7)
		b[4] = byte(v<<1) | 1
	}
	for i := from; i*188 < len(out); i++ {
		p := out[i*188 : (i+1)*188]
		off := 4
		if p[3]&0x20 != 0 {
			if p[4] >= 7 && p[5]&0x10 != 0 { // a PCR: 33-bit base, 6 reserved bits, 9-bit extension
				pcr := p[6:12]
				base := int64(pcr[0])<<25 | int64(pcr[1])<<17 | int64(pcr[2])<<9 | int64(pcr[3])<<1 | int64(pcr[4]>>7)
				base = ((base+by)%wrap + wrap) % wrap
				pcr[0], pcr[1], pcr[2], pcr[3] = byte(base>>25), byte(base>>17), byte(base>>9), byte(base>>1)
				pcr[4] = pcr[4]&0x7f | byte(base<<7)
			}
			off += 1 + int(p[4])
		}
		if p[1]&0x40 == 0 || p[3]&0x10 == 0 || off+14 > 188 {
			continue
		}
		pes := p[off:]
		if pes[0] != 0 || pes[1] != 0 || pes[2] != 1 || pes[6]&0xc0 != 0x80 {
			continue // PSI, or a PES without the optional header
		}
		switch pes[7] >> 6 {
		case 2:
			shift(pes[9:14])
		case 3:
			shift(pes[9:14])
			shift(pes[14:19])
		}
	}
	return out
}
