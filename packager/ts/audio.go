package ts

import (
	"bytes"
	"fmt"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// setAudioFormat makes the audio track from the first unit's format, and checks that
// later units keep it (a new sample entry mid-stream is not supported).
func (d *Demuxer) setAudioFormat(u audioUnit) error {
	f := u.format
	if d.audio != nil && d.audioFormat == f {
		return nil
	}
	if f.sampleRate <= 0 || f.channels <= 0 {
		return fmt.Errorf("invalid %s stream: %d Hz, %d channels", f.codec.Name(), f.sampleRate, f.channels)
	}
	if d.audio == nil {
		d.audioFormat = f
		d.audio = &media.Track{
			Kind: media.Audio, Codec: f.codec,
			Timescale:  uint32(f.sampleRate),
			SampleRate: f.sampleRate, Channels: f.channels, Config: bytes.Clone(u.config),
			FrameDuration: f.frameDur, ObjectType: f.objectType,
		}
		return nil
	}
	was := d.audioFormat
	if was.codec != f.codec {
		return unsupportedErr(fmt.Sprintf("audio codec change from %s to %s", was.codec.Name(), f.codec.Name()), d.audioType, false)
	}
	if was.key != f.key || was.sampleRate != f.sampleRate {
		return fmt.Errorf("%s configuration changes mid-stream (%d Hz %d ch -> %d Hz %d ch), not supported",
			f.codec.Name(), was.sampleRate, was.channels, f.sampleRate, f.channels)
	}
	d.audioFormat = f // the same stream; fields outside the key (bitrate) may move
	return nil
}

// audioAU handles one audio unit of samples PCM samples; pts (90 kHz, on the output
// timeline) is its own when stamped, else it follows the unit before it.
func (d *Demuxer) audioAU(pts int64, stamped bool, samples int, au []byte) error {
	t := d.audio
	sr := int64(t.SampleRate)
	ticks := floorDiv(pts*sr+VideoTimescale/2, VideoTimescale)
	switch {
	case !stamped:
		if !d.audioStarted {
			d.lost.add("audio frames without a timestamp", 1)
			return nil
		}
	case d.audioResync || !d.audioStarted:
		// First frame of the stream or of a period: follow the PTS, but never go back
		// into what was already emitted.
		if d.audioStarted {
			ticks = max(ticks, d.audioNext)
		}
		d.audioNext = ticks
		d.audioResync = false
	case ticks-d.audioNext > int64(samples)/2:
		// A gap: follow the PTS. Backwards jumps keep the frame count so the timeline
		// stays monotonic.
		d.audioNext = ticks
	}
	if len(au) == 0 {
		return nil
	}
	d.audioStarted = true
	if err := d.curEmit(media.Sample{Track: t, DTS: d.audioNext, Sync: true, Data: au}); err != nil {
		return err
	}
	d.audioNext += int64(samples)
	return nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
