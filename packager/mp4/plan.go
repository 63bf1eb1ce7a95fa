package mp4

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// This file plans the header: which tracks, in which order, how large the moov is and so
// where the media starts, whether chunk offsets need co64, and the free box that fills a
// reserve. Planning writes nothing (docs/spec.md §4: the layout computation stays apart from the
// byte copying): the Writer plans after the media, and a writer that sends the header
// before the media arrives can plan from an Index alone.

// Brand selects the ftyp box.
type Brand int

const (
	// BrandMP4 is major isom, minor 512, compatible isom iso2 mp41 plus avc1 with H.264
	// and av01 with AV1, as ffmpeg writes them (the video download types).
	BrandMP4 Brand = iota
	// BrandM4A is for the audio download type: major "M4A ", compatible M4A isom iso2
	// mp41 when every track is AAC; otherwise (AC-3, E-AC-3, MP3/MP2, Opus) what BrandMP4
	// writes for them, major isom, compatible isom iso2 mp41 (docs/spec.md keeps "M4A " for
	// AAC/ALAC; ffmpeg writes these brands too, adding dby1 for AC-3 and E-AC-3).
	BrandM4A
)

// ErrHeaderTooLarge is returned by BuildHeader when the header does not fit in front of
// the given media start offset.
var ErrHeaderTooLarge = errors.New("mp4: header larger than the space reserved for it")

// HeaderSizeError says how large the header would be.
type HeaderSizeError struct{ Need, Have int64 }

// Error says both sizes.
func (e *HeaderSizeError) Error() string {
	return fmt.Sprintf("mp4: header needs %d bytes, %d reserved", e.Need, e.Have)
}

// Is makes a HeaderSizeError match ErrHeaderTooLarge.
func (e *HeaderSizeError) Is(target error) bool { return target == ErrHeaderTooLarge }

// BuildHeader computes the bytes that precede the media: ftyp, moov (chunk offsets
// pointing at mediaStart + Chunk.Offset), an optional free box and the mdat header.
// It is a pure function of its arguments.
//
// With mediaStart 0 the header is as small as possible and the media starts right after
// it (len of the result). Otherwise the result is exactly mediaStart bytes long, the gap
// being filled by a free box, or a *HeaderSizeError (ErrHeaderTooLarge) when it does not
// fit. tracks gives the moov order (by Track.ID); tracks without samples are left out.
func BuildHeader(x *Index, tracks []*media.Track, brand Brand, mediaStart int64) ([]byte, error) {
	h, err := planHeader(x, tracks, brand, mediaStart, nil)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(int(h.size()))
	if err := h.writeHead(&b); err != nil {
		return nil, err
	}
	b.Write(make([]byte, h.pad))
	b.Write(h.mdat)
	return b.Bytes(), nil
}

// header is the plan of the bytes that precede the media: ftyp, moov, the free box's
// header (writeHead), pad zero bytes, the mdat header. moov is measured, not kept (the
// moov of a long video is MBs): writeHead generates it again as it writes. The Writer
// leaves the pad a hole in the file.
type header struct {
	x     *Index
	order []*TrackIndex
	udta  []byte // the children of moov's udta (Options.MovieUdta); nil: no udta
	start int64  // media start
	co64  bool
	ftyp  []byte
	moov  []uint32 // sizes of moov's boxes in the order they open; moov[0] is moov's
	free  []byte   // the free box's header, if any
	pad   int64    // zero bytes of the free box after its header
	mdat  []byte   // mdat box header
}

// headSize is the bytes writeHead writes.
func (h *header) headSize() int64 { return int64(len(h.ftyp)) + int64(h.moov[0]) + int64(len(h.free)) }

// size is the bytes before the media: where it starts.
func (h *header) size() int64 { return h.headSize() + h.pad + int64(len(h.mdat)) }

// planHeader plans the header for x's tracks, with udta's boxes in moov's udta. With
// mediaStart 0 the media follow the header right away; otherwise the header must fit
// in mediaStart bytes.
func planHeader(x *Index, tracks []*media.Track, brand Brand, mediaStart int64, udta []byte) (*header, error) {
	order, err := trackOrder(x, tracks)
	if err != nil {
		return nil, err
	}
	h := &header{x: x, order: order, udta: udta, ftyp: ftypBox(brand, order), mdat: mdatHeader(x.MediaSize)}
	var lastChunk int64
	if n := len(x.Chunks); n > 0 {
		lastChunk = x.Chunks[n-1].Offset
	}
	fixed := int64(len(h.ftyp) + len(h.mdat))

	start, co64 := mediaStart, false
	if start == 0 {
		if h.moov, err = measureMoov(x, order, false, udta); err != nil {
			return nil, err
		}
		start = fixed + int64(h.moov[0])
		if start+lastChunk > math.MaxUint32 {
			// co64 makes moov larger, which only moves the media further up.
			co64 = true
			if h.moov, err = measureMoov(x, order, true, udta); err != nil {
				return nil, err
			}
			start = fixed + int64(h.moov[0])
		}
	} else {
		co64 = start+lastChunk > math.MaxUint32
		if h.moov, err = measureMoov(x, order, co64, udta); err != nil {
			return nil, err
		}
	}
	h.start, h.co64 = start, co64
	need := fixed + int64(h.moov[0])
	gap := start - need
	if gap != 0 && gap < 8 {
		return nil, &HeaderSizeError{Need: need, Have: start}
	}
	if gap > 0 {
		if gap > math.MaxUint32 {
			return nil, errors.New("mp4: reserve too large")
		}
		h.free = append(be32(nil, uint32(gap)), "free"...)
		h.pad = gap - 8
	}
	return h, nil
}

// measureMoov returns the sizes of moov's boxes (they do not depend on the media start,
// only on co64), from a pass of the box writers that counts bytes and keeps none.
func measureMoov(x *Index, order []*TrackIndex, co64 bool, udta []byte) ([]uint32, error) {
	w := &boxWriter{measure: true}
	if err := buildMoov(w, x, order, 0, co64, udta); err != nil {
		return nil, err
	}
	return w.sizes, nil
}

// trackOrder returns the tracks of x that have samples, ordered by Track.ID. Every track
// of x must be in tracks (a sample of an unknown track is a bug), and the IDs unique.
func trackOrder(x *Index, tracks []*media.Track) ([]*TrackIndex, error) {
	var order []*TrackIndex
	listed := map[*media.Track]bool{}
	for _, t := range tracks {
		listed[t] = true
		if i, ok := x.byTrack[t]; ok && x.Tracks[i].Len() > 0 {
			order = append(order, x.Tracks[i])
		}
	}
	for _, ti := range x.Tracks {
		if !listed[ti.Track] {
			return nil, fmt.Errorf("mp4: samples of a %s track that is not in the track list", ti.Track.Kind)
		}
	}
	if len(order) == 0 {
		return nil, errors.New("mp4: no samples")
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].Track.ID < order[j].Track.ID })
	for i := 1; i < len(order); i++ {
		if order[i].Track.ID == order[i-1].Track.ID || order[i].Track.ID <= 0 {
			return nil, fmt.Errorf("mp4: track IDs must be unique and positive")
		}
	}
	if order[0].Track.ID <= 0 {
		return nil, fmt.Errorf("mp4: track IDs must be unique and positive")
	}
	return order, nil
}

// mdatHeader is the mdat box's header, with a 64-bit size when the media need one.
func mdatHeader(mediaSize int64) []byte {
	if mediaSize+8 <= math.MaxUint32 {
		return append(be32(nil, uint32(mediaSize+8)), "mdat"...)
	}
	b := be32(nil, 1)
	b = append(b, "mdat"...)
	return be64(b, uint64(mediaSize+16))
}
