package ts

import (
	"fmt"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// Coverage: how much media each segment yielded against its EXTINF (see the Demuxer
// doc's accounting).

// coverage is how much media a segment yielded, in 90 kHz ticks, by track.
type coverage struct {
	ticks [2]int64 // idxVideo, idxAudio
	units int
}

// checkCoverage fails a segment whose media lasts much less than its EXTINF. A track that
// falls short while the other does not may have ended there (audio often ends before the
// video): that is a loss only once the track yields media again in a later segment.
func (d *Demuxer) checkCoverage() error {
	enough := func(got int64) bool {
		return media.Covers(time.Duration(float64(got)/VideoTimescale*float64(time.Second)), d.seg.Duration)
	}
	for i, name := range [2]string{"video", "audio"} {
		if d.short[i] != "" && d.cov.ticks[i] > 0 {
			return d.malformed("media lost: %s, and the %s goes on after it", d.short[i], name)
		}
	}
	if got := max(d.cov.ticks[idxVideo], d.cov.ticks[idxAudio]); !enough(got) {
		return d.malformed("media lost: the segment holds %.3f s of media (%d units) but its EXTINF says %.3f s",
			float64(got)/VideoTimescale, d.cov.units, d.seg.Duration.Seconds())
	}
	for i, name := range [2]string{"video", "audio"} {
		if d.had[i] && d.short[i] == "" && !enough(d.cov.ticks[i]) {
			d.short[i] = fmt.Sprintf("segment %d holds %.3f s of %s against its EXTINF of %.3f s",
				d.segIndex-1, float64(d.cov.ticks[i])/VideoTimescale, name, d.seg.Duration.Seconds())
		}
		d.had[i] = d.had[i] || d.cov.ticks[i] > 0
	}
	return nil
}
