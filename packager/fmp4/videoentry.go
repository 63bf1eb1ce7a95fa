package fmp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/stream-downloads/caddy-stream-downloads/packager/codec"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// The visual sample entries of an init section: H.264 (avcC), HEVC (hvcC), AV1 (av1C).

// visualEntryHeader is the size of a VisualSampleEntry's fixed fields after the box header.
const visualEntryHeader = 78

func parseVisualEntry(ti *trakInfo, e box) error {
	switch e.typ {
	case "avc1", "avc3":
		ti.codec = media.H264
	case "hvc1", "hev1":
		ti.codec = media.H265
	case "av01":
		ti.codec = media.AV1
	case "encv":
		return unsupportedEntry("encrypted video (DRM/Common Encryption"+originalFormat(e, visualEntryHeader)+")", e.typ, true)
	default:
		return unsupportedEntry(entryName(e.typ), e.typ, true)
	}
	if len(e.payload) < visualEntryHeader {
		return fmt.Errorf("track %d: truncated %s sample entry", ti.id, e.typ)
	}
	ti.width = int(binary.BigEndian.Uint16(e.payload[24:]))
	ti.height = int(binary.BigEndian.Uint16(e.payload[26:]))
	kids, err := children(e.payload[visualEntryHeader:])
	if err != nil {
		return fmt.Errorf("track %d: %s sample entry: %v", ti.id, e.typ, err)
	}
	switch ti.codec {
	case media.H264:
		c, ok := kids["avcC"]
		if !ok {
			return fmt.Errorf("track %d: %s sample entry without avcC", ti.id, e.typ)
		}
		if err := parseAvcC(ti, c.payload); err != nil {
			return fmt.Errorf("track %d: invalid avcC: %v", ti.id, err)
		}
		if e.typ == "avc1" && len(ti.sps) > 0 && len(ti.pps) > 0 {
			ti.verbatim, ti.config = true, bytes.Clone(c.payload)
		}
	case media.H265:
		c, ok := kids["hvcC"]
		if !ok {
			return fmt.Errorf("track %d: %s sample entry without hvcC", ti.id, e.typ)
		}
		if err := parseHvcC(ti, c.payload); err != nil {
			return fmt.Errorf("track %d: invalid hvcC: %v", ti.id, err)
		}
		if e.typ == "hvc1" && len(ti.vps) > 0 && len(ti.sps) > 0 && len(ti.pps) > 0 {
			ti.verbatim, ti.config = true, bytes.Clone(c.payload)
		}
	case media.AV1:
		c, ok := kids["av1C"]
		if !ok {
			return fmt.Errorf("track %d: av01 sample entry without av1C", ti.id)
		}
		cfg, err := codec.ParseAV1C(c.payload)
		if err != nil {
			return fmt.Errorf("track %d: invalid av1C: %v", ti.id, err)
		}
		ti.config = bytes.Clone(c.payload)
		if ti.width <= 0 || ti.height <= 0 {
			ti.width, ti.height = cfg.Width, cfg.Height
		}
		if ti.width <= 0 || ti.height <= 0 {
			return fmt.Errorf("track %d: AV1 video without a size", ti.id)
		}
		return nil
	}
	ti.updateDimensions()
	return nil
}

// updateDimensions takes width and height from the SPS when it parses.
func (ti *trakInfo) updateDimensions() {
	if len(ti.sps) == 0 {
		return
	}
	if w, h, ok := spsSize(ti.codec, ti.sps[0]); ok {
		ti.width, ti.height = w, h
	}
}

func spsSize(c media.Codec, sps []byte) (w, h int, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	switch c {
	case media.H264:
		var s h264.SPS
		if err := s.Unmarshal(sps); err != nil {
			return 0, 0, false
		}
		return s.Width(), s.Height(), s.Width() > 0 && s.Height() > 0
	case media.H265:
		var s h265.SPS
		if err := s.Unmarshal(sps); err != nil {
			return 0, 0, false
		}
		return s.Width(), s.Height(), s.Width() > 0 && s.Height() > 0
	}
	return 0, 0, false
}

// parseAvcC reads an AVCDecoderConfigurationRecord (ISO 14496-15 5.3.3.1), any NAL length size.
func parseAvcC(ti *trakInfo, p []byte) error {
	if len(p) < 6 {
		return errors.New("too short")
	}
	if p[0] != 1 {
		return fmt.Errorf("configuration version %d", p[0])
	}
	ti.nalLen = int(p[4]&3) + 1
	if ti.nalLen == 3 {
		return errors.New("NAL length size 3 is not allowed")
	}
	pos := 5
	read := func(n int) ([][]byte, error) {
		var out [][]byte
		for range n {
			if pos+2 > len(p) {
				return nil, errors.New("truncated parameter set")
			}
			l := int(binary.BigEndian.Uint16(p[pos:]))
			pos += 2
			if pos+l > len(p) {
				return nil, errors.New("truncated parameter set")
			}
			if l > 0 {
				out = append(out, bytes.Clone(p[pos:pos+l]))
			}
			pos += l
		}
		return out, nil
	}
	n := int(p[pos] & 0x1f)
	pos++
	var err error
	if ti.sps, err = read(n); err != nil {
		return err
	}
	if pos >= len(p) {
		return errors.New("truncated before the PPS count")
	}
	n = int(p[pos])
	pos++
	ti.pps, err = read(n)
	return err
}

// parseHvcC reads an HEVCDecoderConfigurationRecord (ISO 14496-15 8.3.3.1), any NAL length size.
func parseHvcC(ti *trakInfo, p []byte) error {
	if len(p) < 23 {
		return errors.New("too short")
	}
	if p[0] != 1 {
		return fmt.Errorf("configuration version %d", p[0])
	}
	ti.nalLen = int(p[21]&3) + 1
	if ti.nalLen == 3 {
		return errors.New("NAL length size 3 is not allowed")
	}
	numArrays := int(p[22])
	pos := 23
	for range numArrays {
		if pos+3 > len(p) {
			return errors.New("truncated NAL unit array")
		}
		n := int(binary.BigEndian.Uint16(p[pos+1:]))
		pos += 3
		for range n {
			if pos+2 > len(p) {
				return errors.New("truncated NAL unit")
			}
			l := int(binary.BigEndian.Uint16(p[pos:]))
			pos += 2
			if pos+l > len(p) {
				return errors.New("truncated NAL unit")
			}
			nalu := bytes.Clone(p[pos : pos+l])
			pos += l
			// By the NAL unit's own header (the array's type repeats it).
			switch codec.ParameterSetKind(nalu, true) {
			case codec.VPS:
				ti.vps = append(ti.vps, nalu)
			case codec.SPS:
				ti.sps = append(ti.sps, nalu)
			case codec.PPS:
				ti.pps = append(ti.pps, nalu)
			}
		}
	}
	return nil
}
