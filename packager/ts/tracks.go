package ts

import (
	"fmt"
	"slices"
	"strings"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// Stream selection: which streams of a program map table (PMT) are read, one video and
// one audio stream at most, what the tracks are, and which programs are refused.

// unsupportedErr is the error for a stream of PMT stream type st in a codec we cannot
// package (st 0: packed audio, which has no PMT).
func unsupportedErr(codec string, st uint8, video bool) *media.UnsupportedCodecError {
	e := &media.UnsupportedCodecError{Codec: codec, Video: video}
	if st != 0 {
		e.Declared = fmt.Sprintf("stream type 0x%02x", st)
	}
	return e
}

// onPMT takes the streams of a program map table: the first H.264/HEVC video and the
// first audio stream in a codec we read are read; a program whose only video (or audio)
// is in a codec we cannot package is refused. Streams left out are said in Notes.
func (d *Demuxer) onPMT(streams []esInfo) error {
	var video, audio *esInfo
	var unsupported *media.UnsupportedCodecError
	unsupportedVideo := false
	var left []string
	for i, es := range streams {
		kind, name := classify(es)
		switch {
		case kind == kindH264 || kind == kindH265:
			if video == nil {
				video = &streams[i]
				continue
			}
		case kind.audio():
			if audio == nil {
				audio = &streams[i]
				continue
			}
		case kind == kindVideoOther || kind == kindAudioOther:
			isVideo := kind == kindVideoOther
			if unsupported == nil || (isVideo && !unsupportedVideo) {
				unsupported = unsupportedErr(name, es.streamType, isVideo)
				unsupportedVideo = isVideo
			}
		default:
			continue // not media
		}
		left = append(left, fmt.Sprintf("%s (PID 0x%x)", name, es.pid))
	}
	if unsupported != nil && ((unsupportedVideo && video == nil) || (!unsupportedVideo && audio == nil)) {
		return unsupported
	}
	if video == nil && audio == nil {
		return d.malformed("no video or audio stream in a codec we read in the program (%s)", media.Supported)
	}
	if len(left) > 0 && !slices.Equal(left, d.leftOut) {
		d.leftOut = left
		d.note("streams left out (one video and one audio stream are taken): %s", strings.Join(left, ", "))
	}
	d.declared = d.declared[:0]
	d.segV, d.segA = video != nil, audio != nil
	d.ord.other = [2]bool{idxVideo: audio != nil, idxAudio: video != nil}
	if video != nil {
		kind, _ := classify(*video)
		codec := media.H264
		if kind == kindH265 {
			codec = media.H265
		}
		if d.video == nil {
			d.video = &media.Track{Kind: media.Video, Codec: codec, Timescale: VideoTimescale}
		} else if d.video.Codec != codec {
			return unsupportedErr(fmt.Sprintf("video codec change from %s to %s", d.video.Codec.Name(), codec.Name()), video.streamType, true)
		}
		d.vES.hevc = codec == media.H265
		d.vES.poc.hevc = d.vES.hevc
		d.pes.follow(video.pid, &d.vES)
		d.declared = append(d.declared, media.Video)
	}
	if audio != nil {
		kind, _ := classify(*audio)
		if d.aES.syn == nil || kind != d.audioKind {
			d.aES.syn = newFrameSyntax(kind, audio.desc)
			d.audioKind = kind
		}
		d.audioType = audio.streamType
		d.pes.follow(audio.pid, &d.aES)
		d.declared = append(d.declared, media.Audio)
	}
	d.pes.keepOnly(func(s *pesStream) bool {
		return (video != nil && s.pid == video.pid && s.sink == esSink(&d.vES)) ||
			(audio != nil && s.pid == audio.pid && s.sink == esSink(&d.aES))
	})
	return nil
}
