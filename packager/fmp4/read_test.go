package fmp4

import (
	"bytes"
	"io"
	"testing"
)

// hinted is a reader that tells a size hint, as hls.Fetch's body does.
type hinted struct {
	io.Reader
	hint int64
}

func (h hinted) SizeHint() int64 { return h.hint }

// TestReadSegment: whatever the reader tells of its size (exact, too much as after
// decryption, too little, nothing), readSegment returns the prefix zeros and all of it.
func TestReadSegment(t *testing.T) {
	src := bytes.Repeat([]byte("0123456789"), 1000)
	tests := []struct {
		name string
		r    func() io.Reader
	}{
		{"bytes.Reader", func() io.Reader { return bytes.NewReader(src) }},
		{"exact hint", func() io.Reader { return hinted{bytes.NewBuffer(src), int64(len(src))} }},
		{"hint over", func() io.Reader { return hinted{bytes.NewBuffer(src), int64(len(src)) + 16} }},
		{"hint under", func() io.Reader { return hinted{bytes.NewBuffer(src), int64(len(src)) - 10} }},
		{"no hint", func() io.Reader { return hinted{bytes.NewBuffer(src), -1} }},
		{"huge hint", func() io.Reader { return hinted{bytes.NewBuffer(src), 1 << 40} }},
		{"plain", func() io.Reader { return bytes.NewBuffer(src) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, reuse := range [][]byte{nil, make([]byte, 5), make([]byte, 0, 20000)} {
				got, err := readSegment(tc.r(), 7, reuse)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got[:7], make([]byte, 7)) || !bytes.Equal(got[7:], src) {
					t.Fatalf("reuse cap %d: %d bytes back, not the prefix and the source", cap(reuse), len(got))
				}
			}
		})
	}
}
