package fmp4

import (
	"bytes"
	"io"
	"sort"
)

// Pieces are byte ranges of one segment read so far, for indexing it without its
// media data (SegmentPiecesIndex): sorted, neither overlapping nor touching (Add merges).
type Pieces struct {
	at   []int64
	data [][]byte
}

// Add adds the bytes b found at offset off of the segment.
func (p *Pieces) Add(off int64, b []byte) {
	if len(b) == 0 {
		return
	}
	end := off + int64(len(b))
	// The pieces that overlap or touch [off, end) are merged with it.
	i := sort.Search(len(p.at), func(i int) bool { return p.at[i]+int64(len(p.data[i])) >= off })
	j := i
	for j < len(p.at) && p.at[j] <= end {
		j++
	}
	if i == j {
		p.at = append(p.at[:i], append([]int64{off}, p.at[i:]...)...)
		p.data = append(p.data[:i], append([][]byte{bytes.Clone(b)}, p.data[i:]...)...)
		return
	}
	lo, hi := min(off, p.at[i]), max(end, p.at[j-1]+int64(len(p.data[j-1])))
	merged := make([]byte, hi-lo)
	for k := i; k < j; k++ {
		copy(merged[p.at[k]-lo:], p.data[k])
	}
	copy(merged[off-lo:], b)
	p.at = append(p.at[:i], append([]int64{lo}, p.at[j:]...)...)
	p.data = append(p.data[:i], append([][]byte{merged}, p.data[j:]...)...)
}

// Bytes is how many bytes the pieces hold.
func (p *Pieces) Bytes() int64 {
	var n int64
	for _, d := range p.data {
		n += int64(len(d))
	}
	return n
}

// Count is the number of pieces.
func (p *Pieces) Count() int { return len(p.at) }

// span returns the n bytes at off when one piece holds them all.
func (p *Pieces) span(off, n int64) ([]byte, bool) {
	i := sort.Search(len(p.at), func(i int) bool { return p.at[i] > off }) - 1
	if i < 0 || off+n > p.at[i]+int64(len(p.data[i])) {
		return nil, false
	}
	return p.data[i][off-p.at[i] : off-p.at[i]+n], true
}

// covers tells whether the pieces hold bytes off..off+n-1.
func (p *Pieces) covers(off, n int64) bool {
	_, ok := p.span(off, n)
	return ok
}

// reader reads a segment of size bytes: the pieces' bytes, zeros between them (the
// index mode skips the samples' data).
func (p *Pieces) reader(size int64) io.Reader {
	var rs []io.Reader
	var pos int64
	for i, at := range p.at {
		if at >= size {
			break
		}
		if at > pos {
			rs = append(rs, &zeroReader{n: at - pos})
		}
		d := p.data[i][:min(int64(len(p.data[i])), size-at)]
		rs = append(rs, bytes.NewReader(d))
		pos = at + int64(len(d))
	}
	if pos < size {
		rs = append(rs, &zeroReader{n: size - pos})
	}
	return io.MultiReader(rs...)
}

// NextRange is the first range of a segment (size bytes) that p lacks of what indexing
// it needs but the first MPEG audio frame: a box header, a moof with the header after
// it (n 0: none). It reads nothing but p, so the readers of many segments may walk
// them in parallel, leaving the demuxer (SegmentPiecesIndex) the last word.
func NextRange(p *Pieces, size int64) (off, n int64) {
	return (&Demuxer{}).piecesNeed(p, size, false)
}
