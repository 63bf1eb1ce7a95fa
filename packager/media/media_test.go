package media

import (
	"testing"
	"time"
)

func TestCovers(t *testing.T) {
	s := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
	tests := []struct {
		got, extinf time.Duration
		want        bool
	}{
		{s(6), s(6), true},
		{s(5.9), s(6), true},
		{s(4.7), s(6), true},  // 0.8·6 − 0.1
		{s(4.6), s(6), false}, // more than a fifth missing
		{s(1.5), s(2), true},  // 1.5 s rounded to a whole EXTINF of 2
		{s(0.5), s(1), false}, // half a segment
		{s(8.2), s(8.9), true},
		{0, 0, true}, // EXTINF unknown
		{0, s(1), false},
	}
	for _, tc := range tests {
		if got := Covers(tc.got, tc.extinf); got != tc.want {
			t.Errorf("Covers(%v, %v) = %v, want %v", tc.got, tc.extinf, got, tc.want)
		}
	}
}
