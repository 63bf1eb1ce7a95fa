package ts

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// setAudioConfig makes the audio track from the first frame's ADTS header, and checks
// that later frames keep it.
func (d *Demuxer) setAudioConfig(cfg mpeg4audio.AudioSpecificConfig) error {
	if d.audio != nil && d.audioConfig == cfg {
		return nil
	}
	channels := int(cfg.ChannelConfig)
	switch {
	case channels == 7:
		channels = 8
	case channels == 0 || channels > 7:
		return &UnsupportedCodecError{Codec: fmt.Sprintf("AAC with channel configuration %d", cfg.ChannelConfig), StreamType: 0x0f}
	}
	if cfg.SampleRate <= 0 {
		return errors.New("invalid AAC sample rate")
	}
	asc, err := cfg.Marshal()
	if err != nil {
		return fmt.Errorf("invalid AAC configuration: %w", err)
	}
	d.audioConfig = cfg
	if d.audio == nil {
		d.audio = &media.Track{
			Kind: media.Audio, Codec: media.AAC,
			Timescale:  uint32(cfg.SampleRate),
			SampleRate: cfg.SampleRate, Channels: channels, Config: asc, FrameDuration: aacFrameSamples,
		}
		return nil
	}
	if !bytes.Equal(d.audio.Config, asc) {
		return fmt.Errorf("AAC configuration changes mid-stream (%d Hz %d ch -> %d Hz %d ch), not supported",
			d.audio.SampleRate, d.audio.Channels, cfg.SampleRate, channels)
	}
	return nil
}

// aacAU handles one AAC frame; pts (90 kHz, on the output timeline) is its own when
// stamped, else it follows the frame before it.
func (d *Demuxer) aacAU(pts int64, stamped bool, au []byte) error {
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
	case ticks-d.audioNext > aacFrameSamples/2:
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
	d.audioNext += aacFrameSamples
	return nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
