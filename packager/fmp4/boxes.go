package fmp4

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/Eyevinn/mp4ff/mp4"
)

// box is one ISO BMFF box found in a byte slice.
type box struct {
	typ     string
	start   int    // offset of the box header in the slice walked
	data    []byte // the whole box, header included
	payload []byte // the box content after the header
}

// walkBoxes calls fn for each box in b (a sequence of boxes, e.g. a container's payload).
// base is the offset of b in the outer buffer, added to box.start.
func walkBoxes(b []byte, base int, fn func(bx box) error) error {
	off := 0
	for off < len(b) {
		if len(b)-off < 8 {
			return fmt.Errorf("%d stray bytes after the last box", len(b)-off)
		}
		size := uint64(binary.BigEndian.Uint32(b[off:]))
		typ := string(b[off+4 : off+8])
		hdr := 8
		switch size {
		case 0: // to the end
			size = uint64(len(b) - off)
		case 1:
			if len(b)-off < 16 {
				return fmt.Errorf("box %q: truncated 64-bit size", printable(typ))
			}
			size = binary.BigEndian.Uint64(b[off+8:])
			hdr = 16
		}
		if size < uint64(hdr) {
			return fmt.Errorf("box %q has an invalid size %d", printable(typ), size)
		}
		if size > uint64(len(b)-off) {
			return fmt.Errorf("box %q is truncated: %d bytes declared, %d present", printable(typ), size, len(b)-off)
		}
		n := int(size)
		if err := fn(box{typ: typ, start: base + off, data: b[off : off+n], payload: b[off+hdr : off+n]}); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// children returns the direct children of a container payload by type (the first of each).
func children(payload []byte) (map[string]box, error) {
	m := map[string]box{}
	err := walkBoxes(payload, 0, func(bx box) error {
		if _, ok := m[bx.typ]; !ok {
			m[bx.typ] = bx
		}
		return nil
	})
	return m, err
}

// decodeLeaf decodes one whole box with mp4ff.
func decodeLeaf(bx box) (mp4.Box, error) {
	b, err := mp4.DecodeBox(0, bytes.NewReader(bx.data))
	if err != nil {
		return nil, fmt.Errorf("box %q: %v", printable(bx.typ), err)
	}
	return b, nil
}

func printable(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}
