package ts

import "errors"

// ErrInitSection is what Init returns: MPEG-TS and packed audio carry their codec
// configuration in band, so a rendition of them that names an init section (EXT-X-MAP)
// switches to fMP4 part way, which one Demuxer cannot follow. The packager reports it as
// unsupported input.
var ErrInitSection = errors.New("an MPEG-TS or packed-audio rendition cannot take an init section (EXT-X-MAP): it switches to fMP4")

// Init refuses an init section (media.Demuxer): see ErrInitSection.
func (d *Demuxer) Init(data []byte) error { return ErrInitSection }
