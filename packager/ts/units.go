package ts

import (
	"bytes"
	"errors"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// Units onto the timeline: each access unit or audio unit the elementary streams rebuild
// is placed in its period (unwrapped, checked for a jump), counted for coverage, and held
// back while the period's offset is not known, or handed to videoAU/audioAU (video.go,
// audio.go) with the offset added.

func cloneAU(au [][]byte) [][]byte {
	out := make([][]byte, len(au))
	for i, n := range au {
		out[i] = bytes.Clone(n)
	}
	return out
}

// onVideo receives one H.264 or HEVC access unit with raw 33-bit timestamps.
func (d *Demuxer) onVideo(u videoUnit) error {
	d.jump(u.seg, idxVideo, u.dts)
	p := d.periodOf(u.seg)
	dtsU := p.unwrap(u.dts)
	ptsU := p.unwrap(u.pts)
	// Coverage: the steps between units, a hole counting for at most a second.
	step := int64(VideoTimescale / 25)
	if p.haveV {
		step = min(max(dtsU-p.lastV, 0), VideoTimescale)
	}
	d.cov.ticks[idxVideo] += step
	d.cov.units++
	if step > 0 {
		p.vDelta = step
	}
	p.lastV, p.haveV = dtsU, true
	if !p.resolved {
		if !p.seen[idxVideo] || ptsU < p.firstPTS {
			p.firstPTS = ptsU
		}
		p.observe(idxVideo, dtsU)
		return d.holdBack(event{pts: ptsU, dts: dtsU, au: cloneAU(u.nalus)})
	}
	p.observe(idxVideo, dtsU)
	return d.videoAU(ptsU+p.offset, dtsU+p.offset, u.nalus)
}

// onAudio receives one audio unit.
func (d *Demuxer) onAudio(u audioUnit) error {
	if err := d.setAudioFormat(u); err != nil {
		var uc *media.UnsupportedCodecError
		if errors.As(err, &uc) {
			return err
		}
		return d.malformed("%v", err)
	}
	if u.stamped {
		d.jump(u.seg, idxAudio, u.pts)
	}
	p := d.periodOf(u.seg)
	d.cov.units++
	dur := int64(u.samples) * VideoTimescale / int64(u.format.sampleRate)
	var ptsU int64
	if u.stamped {
		ptsU = p.unwrap(u.pts)
		p.aEnd, p.haveA = ptsU, true
	}
	p.aEnd += dur
	d.cov.ticks[idxAudio] += dur
	if !p.resolved {
		if u.stamped {
			p.observe(idxAudio, ptsU)
		}
		return d.holdBack(event{audio: true, stamped: u.stamped, pts: ptsU, samples: u.samples, au: [][]byte{bytes.Clone(u.data)}})
	}
	if u.stamped {
		p.observe(idxAudio, ptsU)
	}
	return d.audioAU(ptsU+p.offset, u.stamped, u.samples, u.data)
}
