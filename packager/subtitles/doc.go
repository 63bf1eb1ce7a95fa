// Package subtitles turns the WebVTT segments of an HLS subtitle rendition
// (RFC 8216 §3.5, W3C WebVTT) into what a progressive MP4 needs: cues placed on
// the MP4 timeline (X-TIMESTAMP-MAP honoured, 33-bit MPEG-TS wraparound
// handled), 3GPP timed text (tx3g, ISO/IEC 14496-30 and 3GPP TS 26.245)
// samples and the tx3g sample entry the way ffmpeg's mov_text muxer writes
// them, and a WebVTT sidecar file.
//
// The package is self-contained: the packager integration (subtitle tracks in
// the MP4 and the {LANGUAGE}.vtt sidecars) is pending, see issue 17.
package subtitles
