// Package mpegcrc is the CRC-32 of MPEG-2 PSI sections (ISO 13818-1 annex A), shared by the
// TS demuxer and the test tool that rewrites tables. hash/crc32 only has the reflected
// form of the polynomial; this one is MSB first.
package mpegcrc

// Sum is the CRC of b: polynomial 0x04C11DB7, MSB first, initial value all ones, no final
// xor. Over a section with its CRC it is 0.
func Sum(b []byte) uint32 {
	crc := ^uint32(0)
	for _, c := range b {
		crc ^= uint32(c) << 24
		for range 8 {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04c11db7
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
