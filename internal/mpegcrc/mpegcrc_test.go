package mpegcrc

import "testing"

func TestSum(t *testing.T) {
	// The check value of CRC-32/MPEG-2.
	if got := Sum([]byte("123456789")); got != 0x0376e6e7 {
		t.Fatalf("Sum = %#08x, want 0x0376e6e7", got)
	}
	// A PAT section as ffmpeg writes it, CRC included: the CRC over all of it is 0.
	pat := []byte{0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00, 0x2a, 0xb1, 0x04, 0xb2}
	if got := Sum(pat); got != 0 {
		t.Fatalf("Sum over a PAT with its CRC = %#08x, want 0", got)
	}
}
