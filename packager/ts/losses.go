package ts

import (
	"fmt"
	"strings"
)

// losses counts, per segment, the media the demuxer could not use: packets missing or
// damaged, bytes that belong to no unit, units cut short. Any of it ends the run in an
// error (docs/spec.md §4: a file is ready only with every sample of the source), so each is
// counted where it happens and reported together at the end of the segment.
//
// What the first packets of a segment find missing of what the segment before left in
// progress (a PES cut short of its length, a unit cut) is that segment's loss: while
// into is set, add counts there (pesReader points it at the Demuxer's tail).
type losses struct {
	what []string
	n    []int64
	into *losses
}

func (l *losses) add(what string, n int64) {
	if l.into != nil {
		l.into.add(what, n)
		return
	}
	for i, w := range l.what {
		if w == what {
			l.n[i] += n
			return
		}
	}
	l.what = append(l.what, what)
	l.n = append(l.n, n)
}

func (l *losses) any() bool { return len(l.what) > 0 }

// addAll counts what o counted.
func (l *losses) addAll(o *losses) {
	for i, w := range o.what {
		l.add(w, o.n[i])
	}
}

func (l *losses) reset() { l.what, l.n = l.what[:0], l.n[:0] }

func (l *losses) String() string {
	parts := make([]string, len(l.what))
	for i, w := range l.what {
		parts[i] = fmt.Sprintf("%d %s", l.n[i], w)
	}
	return strings.Join(parts, ", ")
}
