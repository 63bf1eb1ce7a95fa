package fmp4

import (
	"bytes"
	"io"
	"testing"
)

// TestPieces: pieces added in any order merge where they overlap or touch, read back
// with zeros between them, and say which ranges they hold.
func TestPieces(t *testing.T) {
	var p Pieces
	p.Add(10, []byte("klmno"))
	p.Add(0, []byte("abc"))
	p.Add(20, []byte("uv"))
	p.Add(13, []byte("nopq")) // overlaps the second piece and extends it
	p.Add(3, []byte("def"))   // touches the first
	if p.Count() != 3 || p.Bytes() != 6+7+2 {
		t.Fatalf("%d pieces of %d bytes: %v %q", p.Count(), p.Bytes(), p.at, p.data)
	}
	got, err := io.ReadAll(p.reader(24))
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("abcdef\x00\x00\x00\x00klmnopq\x00\x00\x00uv\x00\x00")
	if !bytes.Equal(got, want) {
		t.Errorf("read %q, want %q", got, want)
	}
	for _, c := range []struct {
		off, n int64
		ok     bool
	}{{0, 6, true}, {0, 7, false}, {10, 7, true}, {12, 3, true}, {16, 2, false}, {20, 2, true}, {22, 1, false}} {
		if got := p.covers(c.off, c.n); got != c.ok {
			t.Errorf("covers(%d, %d) = %v, want %v", c.off, c.n, got, c.ok)
		}
	}
}
