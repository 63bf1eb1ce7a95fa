package tsrecut

import (
	"fmt"
	"math/rand/v2"
	"sort"
)

// Pattern says where the PES packets of a re-cut segment begin. Every pattern is
// deterministic: the same input and pattern give the same bytes.
type Pattern struct {
	Name string
	Kind Kind
	// VideoSize and AudioSize: bytes of elementary stream per PES (KindFixed).
	VideoSize, AudioSize int
	// Seed of the pseudo-random choices (KindApple, KindRandom); the PID and the length of
	// the stream are mixed in, so each stream and segment is cut differently.
	Seed uint64
}

// Kind is the rule of a Pattern.
type Kind int

const (
	// KindFixed: a PES every VideoSize (video) or AudioSize (audio) bytes of elementary
	// stream, wherever the access units are.
	KindFixed Kind = iota
	// KindApple: as Apple's segmenters do. Each video PES begins with the last 1 to 180
	// bytes of the previous access unit (how many varies, at most half of it), then the
	// access unit whose PTS and DTS it carries: every access unit has its own timestamps,
	// and the PES that carries them holds at least half of it (so that ffmpeg, whose parser
	// takes a frame's timestamps from the PES it is reading when it finds the frame's start,
	// times every frame right). Audio PES hold 2 to 4 ADTS frames' worth, each cut in the middle of a
	// frame (sometimes inside its header), so every PES after the first begins without an
	// ADTS header.
	KindApple
	// KindRandom: sizes drawn at random, 1..4000 bytes for video and 1..700 for audio, with
	// tiny PES (1..8 bytes) and pairs of cuts inside the first 7 bytes of an access unit
	// (its start code and AUD, or its ADTS header) mixed in.
	KindRandom
)

// The named patterns (Patterns lists them, PatternNamed finds one).
var (
	Fixed  = Pattern{Name: "fixed", Kind: KindFixed, VideoSize: 1000, AudioSize: 300}
	Apple  = Pattern{Name: "apple", Kind: KindApple, Seed: 1}
	Random = Pattern{Name: "random", Kind: KindRandom, Seed: 1}
)

// Patterns lists the named patterns.
func Patterns() []Pattern { return []Pattern{Fixed, Apple, Random} }

// PatternNamed returns the named pattern.
func PatternNamed(name string) (Pattern, error) {
	for _, p := range Patterns() {
		if p.Name == name {
			return p, nil
		}
	}
	return Pattern{}, fmt.Errorf("tsrecut: no pattern %q (fixed, apple, random)", name)
}

func (p Pattern) rng(st *Stream) *rand.Rand {
	return rand.New(rand.NewPCG(p.Seed, uint64(st.PID)<<32^uint64(len(st.ES))))
}

// omitVideoLength says whether video PES number c has PES_packet_length 0 (allowed for
// video only): every other one, so that both forms occur.
func (p Pattern) omitVideoLength(c int) bool { return (c+int(p.Seed))%2 == 0 }

// cuts returns the ES offsets where the PES of st begin, then len(st.ES).
func (p Pattern) cuts(st *Stream) []int {
	n := len(st.ES)
	cuts := []int{0}
	add := func(c int) {
		if c > cuts[len(cuts)-1] && c < n {
			cuts = append(cuts, c)
		}
	}
	r := p.rng(st)
	switch p.Kind {
	case KindFixed:
		size := p.AudioSize
		if st.Video {
			size = p.VideoSize
		}
		for c := size; c < n; c += size {
			add(c)
		}
	case KindApple:
		if st.Video {
			for i := 1; i < len(st.AUs); i++ {
				k := 0
				if prev := st.AULen(i - 1); prev >= 2 {
					k = 1 + r.IntN(min(prev/2, 180))
				}
				add(st.AUs[i].Off - k)
			}
			break
		}
		// Not in the last frame: the last PES holds the start of one.
		for j := 2 + r.IntN(3); j < len(st.AUs)-1; j += 2 + r.IntN(3) {
			in := 0
			if l := st.AULen(j); l > 1 {
				in = 1 + r.IntN(l-1)
			}
			add(st.AUs[j].Off + in)
		}
	case KindRandom:
		maxSize := 700
		if st.Video {
			maxSize = 4000
		}
		for pos := 0; pos < n; pos = cuts[len(cuts)-1] {
			switch x := r.IntN(100); {
			case x < 15:
				add(pos + 1 + r.IntN(8))
			case x < 30:
				// Two cuts inside the first bytes of the next access unit.
				i := sort.Search(len(st.AUs), func(i int) bool { return st.AUs[i].Off > pos })
				if i < len(st.AUs) && st.AULen(i) >= 8 {
					b1 := st.AUs[i].Off + 1 + r.IntN(3)
					add(b1)
					add(b1 + 1 + r.IntN(3))
					continue
				}
				add(pos + 1 + r.IntN(maxSize))
			default:
				add(pos + 1 + r.IntN(maxSize))
			}
			if cuts[len(cuts)-1] == pos { // past the end
				break
			}
		}
	}
	return append(cuts, n)
}
