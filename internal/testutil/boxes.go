package testutil

import "encoding/binary"

// Box returns an ISO BMFF box of type typ holding the concatenated parts, for tests
// that build small MP4 files by hand.
func Box(typ string, parts ...[]byte) []byte {
	n := 8
	for _, p := range parts {
		n += len(p)
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(n))
	b = append(b, typ...)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// U32 returns vs as big-endian 32-bit values.
func U32(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}
