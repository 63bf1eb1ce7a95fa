// Package id3 reads and writes the ID3v2 tags of packed audio (RFC 8216 §3.4): each
// segment starts with one whose PRIV frame gives the timestamp of its first frame. The
// demuxer (packager/ts) and the fixture generator (internal/packedaudio) share it.
package id3

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// TimestampOwner is the owner of the PRIV frame that carries the timestamp.
const TimestampOwner = "com.apple.streaming.transportStreamTimestamp"

// HeaderLen is the length of a tag header.
const HeaderLen = 10

// TagLen reads a tag header (at least HeaderLen bytes, "ID3" first) and returns the
// length of the whole tag: header, frames and footer.
func TagLen(hdr []byte) (int, error) {
	if len(hdr) < HeaderLen || !bytes.HasPrefix(hdr, []byte("ID3")) {
		return 0, errors.New("no ID3v2 tag")
	}
	size, ok := Syncsafe(hdr[6:10])
	if !ok || hdr[3] < 2 || hdr[3] > 4 {
		return 0, fmt.Errorf("invalid ID3v2 tag header (version 2.%d, size % x)", hdr[3], hdr[6:10])
	}
	n := HeaderLen + size
	if hdr[5]&0x10 != 0 { // footer
		n += HeaderLen
	}
	return n, nil
}

// Timestamp finds the timestamp PRIV frame in one whole ID3v2.3/2.4 tag (as TagLen
// measures it) and returns its 33 bits (90 kHz).
func Timestamp(tag []byte) (int64, bool) {
	if len(tag) < HeaderLen {
		return 0, false
	}
	size, _ := Syncsafe(tag[6:10])
	ver, flags := tag[3], tag[5]
	b := tag[HeaderLen:min(len(tag), HeaderLen+size)]
	if flags&0x40 != 0 && len(b) >= 4 { // extended header
		n := int(binary.BigEndian.Uint32(b)) + 4 // v2.3: its size does not count itself
		if ver == 4 {
			n, _ = Syncsafe(b[:4])
		}
		if n > len(b) {
			return 0, false
		}
		b = b[n:]
	}
	for len(b) >= 10 && b[0] != 0 {
		id := string(b[:4])
		n := int(binary.BigEndian.Uint32(b[4:8]))
		if ver == 4 {
			var ok bool
			if n, ok = Syncsafe(b[4:8]); !ok {
				return 0, false
			}
		}
		if 10+n > len(b) {
			return 0, false
		}
		body := b[10 : 10+n]
		b = b[10+n:]
		if id != "PRIV" {
			continue
		}
		owner, data, found := bytes.Cut(body, []byte{0})
		if found && string(owner) == TimestampOwner && len(data) == 8 {
			return int64(binary.BigEndian.Uint64(data) & (1<<33 - 1)), true
		}
	}
	return 0, false
}

// TimestampTag is the ID3v2.4 tag that starts a packed audio segment: one PRIV frame of
// TimestampOwner with the 33-bit timestamp ts (90 kHz) as 8 bytes big-endian.
func TimestampTag(ts int64) []byte {
	priv := binary.BigEndian.AppendUint64([]byte(TimestampOwner+"\x00"), uint64(ts)&(1<<33-1))
	frame := AppendSyncsafe([]byte("PRIV"), len(priv))
	frame = append(frame, 0, 0) // frame flags
	frame = append(frame, priv...)
	tag := AppendSyncsafe([]byte{'I', 'D', '3', 4, 0, 0}, len(frame)) // v2.4.0, no flags
	return append(tag, frame...)
}

// Syncsafe reads a 28-bit syncsafe integer (4 bytes of 7 bits).
func Syncsafe(b []byte) (int, bool) {
	n := 0
	for _, c := range b[:4] {
		if c&0x80 != 0 {
			return 0, false
		}
		n = n<<7 | int(c)
	}
	return n, true
}

// AppendSyncsafe appends n as a syncsafe integer.
func AppendSyncsafe(b []byte, n int) []byte {
	return append(b, byte(n>>21)&0x7f, byte(n>>14)&0x7f, byte(n>>7)&0x7f, byte(n)&0x7f)
}
