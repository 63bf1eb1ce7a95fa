package ts

import (
	"bytes"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/stream-downloads/caddy-stream-downloads/packager/codec"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// Video access units on the output timeline: where video may start, sync samples,
// parameter sets, and the sample handed to the muxer (see the Demuxer doc).

func cloneAll(l [][]byte) [][]byte {
	if len(l) == 0 {
		return nil
	}
	return cloneAU(l)
}

func containsNALU(l [][]byte, n []byte) bool {
	for _, x := range l {
		if bytes.Equal(x, n) {
			return true
		}
	}
	return false
}

// videoAU handles one video access unit on the output timeline.
func (d *Demuxer) videoAU(pts, dts int64, au [][]byte) error {
	t := d.video
	hevc := t.Codec == media.H265
	fi := codec.AccessUnitInfo(au, hevc)
	if !d.videoStarted {
		if len(fi.VPS) > 0 {
			d.lastVPS = cloneAll(fi.VPS)
		}
		if len(fi.SPS) > 0 {
			d.lastSPS = cloneAll(fi.SPS)
		}
		if len(fi.PPS) > 0 {
			d.lastPPS = cloneAll(fi.PPS)
		}
	}
	if d.needKey {
		if !fi.Start {
			if fi.VCL {
				d.skipped++
			}
			return nil // not decodable: drop frames before the first key frame
		}
		if !d.videoStarted {
			if len(d.lastSPS) == 0 || len(d.lastPPS) == 0 || (hevc && len(d.lastVPS) == 0) {
				return nil // parameter sets not seen yet
			}
			if err := d.setVideoParams(hevc); err != nil {
				return err
			}
		}
		d.needKey = false
		d.startPTS = pts
		d.dropLeading = !hevc && fi.OpenGOP
		d.dropRASL = hevc && fi.OpenGOP
		fi.Sync = true
	} else {
		if fi.IRAP {
			d.dropLeading, d.dropRASL = false, false
		}
		if d.dropRASL && fi.RASL {
			d.skipped++
			return nil // RASL of the CRA/BLA we started at: references precede the start
		}
		if d.dropLeading && pts < d.startPTS {
			d.skipped++
			return nil // leading picture of an open GOP: references precede the start
		}
	}

	// Parameter sets equal to the sample entry's are stripped; if any of the access unit's
	// differs (new SPS/PPS after a discontinuity), all of them stay in-band, as ffmpeg
	// keeps them: a decoder drops the PPS of an SPS that changed, so an identical PPS
	// must follow a changed SPS.
	keepParams := false
	for _, n := range fi.VPS {
		keepParams = keepParams || !containsNALU(t.VPS, n)
	}
	for _, n := range fi.SPS {
		keepParams = keepParams || !containsNALU(t.SPS, n)
	}
	for _, n := range fi.PPS {
		keepParams = keepParams || !containsNALU(t.PPS, n)
	}
	buf := d.buf[:0]
	for _, n := range au {
		if len(n) < codec.NALHeaderLen(hevc) {
			continue
		}
		if codec.AUDOrFiller(n, hevc) || (!keepParams && codec.ParameterSet(n, hevc)) {
			continue
		}
		buf = append(buf, byte(len(n)>>24), byte(len(n)>>16), byte(len(n)>>8), byte(len(n)))
		buf = append(buf, n...)
	}
	d.buf = buf
	if len(buf) == 0 || !fi.VCL {
		return nil
	}
	if d.videoStarted && dts <= d.lastDTS {
		return d.malformed("video timestamps go backwards (DTS %d after %d) without EXT-X-DISCONTINUITY", dts, d.lastDTS)
	}
	if d.videoStarted {
		d.lastDelta = dts - d.lastDTS
	} else {
		d.lastDelta = VideoTimescale / 25
	}
	d.lastDTS = dts
	if !d.videoStarted || pts > d.maxPTS {
		d.maxPTS = pts
	}
	d.videoStarted = true
	cto := pts - dts
	if cto < 0 {
		cto = 0
	}
	if cto > 1<<31-1 {
		return d.malformed("PTS is %d ticks after DTS", cto)
	}
	return d.curEmit(media.Sample{Track: t, DTS: dts, CTO: int32(cto), Sync: fi.Sync, Data: buf})
}

// setVideoParams fills the track's parameter sets and size from those seen last.
func (d *Demuxer) setVideoParams(hevc bool) error {
	t := d.video
	if hevc {
		var sps h265.SPS
		if err := sps.Unmarshal(d.lastSPS[0]); err != nil {
			return d.malformed("invalid HEVC SPS: %v", err)
		}
		t.Width, t.Height = sps.Width(), sps.Height()
		t.VPS = d.lastVPS
	} else {
		var sps h264.SPS
		if err := sps.Unmarshal(d.lastSPS[0]); err != nil {
			return d.malformed("invalid H.264 SPS: %v", err)
		}
		t.Width, t.Height = sps.Width(), sps.Height()
	}
	t.SPS, t.PPS = d.lastSPS, d.lastPPS
	return nil
}
