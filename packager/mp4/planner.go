package mp4

import (
	"bytes"
	"errors"
	"iter"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// Planner makes every layout decision of a progressive MP4 from the samples' sizes
// alone: the order of the samples in the media (audio held back and placed in runs of
// about a second, holdAudio), their Index, and the header in front (the reserve of
// Options, or the compact header when it does not fit, for which the Writer moves the
// media). The Writer copies the media where its Planner places them; a server that
// sends a file before its media are fetched plans it from the index of an fMP4 source
// (fmp4.Demuxer's index mode) with a Planner of the same Options and gets the same
// bytes (docs/instant.md).
type Planner struct {
	opts      Options
	reserve   int64
	x         Index
	held      []media.Sample // audio samples not placed yet, Data nil
	heldSizes []int64
	heldBytes int64
	err       error
}

// NewPlanner plans a file written with opts.
func NewPlanner(opts Options) *Planner {
	return &Planner{opts: opts, reserve: reserveFor(opts)}
}

// Add takes the next sample, of size bytes (its Data is not read), in the order a
// Writer is given them. It returns what is placed in the media now, in this order: the
// first flushed samples held back (all of them, oldest first), then the sample itself
// when now (else it is held back). An error is kept: every later call returns it.
func (p *Planner) Add(s media.Sample, size int64) (flushed int, now bool, err error) {
	if p.err != nil {
		return 0, false, p.err
	}
	if s.Track != nil && s.Track.Kind == media.Audio {
		if len(p.held) > 0 {
			first := p.held[0]
			if first.Track != s.Track || s.DTS-first.DTS >= int64(holdAudio*first.Track.Timescale) || p.heldBytes+size > holdAudioBytes {
				if flushed, err = p.Flush(); err != nil {
					return 0, false, err
				}
			}
		}
		s.Data = nil // the caller may reuse it
		p.held = append(p.held, s)
		p.heldSizes = append(p.heldSizes, size)
		p.heldBytes += size
		return flushed, false, nil
	}
	if err := p.place(s, size); err != nil {
		return 0, false, err
	}
	return 0, true, nil
}

// Held is the number of samples held back.
func (p *Planner) Held() int { return len(p.held) }

// Flush places every sample held back (oldest first) and says how many.
func (p *Planner) Flush() (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	n := len(p.held)
	for i, s := range p.held {
		if err := p.place(s, p.heldSizes[i]); err != nil {
			return 0, err
		}
	}
	p.held, p.heldSizes, p.heldBytes = p.held[:0], p.heldSizes[:0], 0
	return n, nil
}

func (p *Planner) place(s media.Sample, size int64) error {
	if err := p.x.Add(s, size); err != nil {
		p.err = err
		return err
	}
	return nil
}

// MediaSize is the bytes of media placed so far.
func (p *Planner) MediaSize() int64 { return p.x.MediaSize }

// Index is the sample tables of what is placed so far.
func (p *Planner) Index() *Index { return &p.x }

// plan places what is held back and plans the header: in the reserve, or compact in
// front of the media, which must then be moved there (relocated).
func (p *Planner) plan(tracks []*media.Track) (h *header, relocated bool, err error) {
	if _, err := p.Flush(); err != nil {
		return nil, false, err
	}
	h, err = planHeader(&p.x, tracks, p.opts.Brand, p.reserve, p.opts.MovieUdta)
	if errors.Is(err, ErrHeaderTooLarge) {
		h, err = planHeader(&p.x, tracks, p.opts.Brand, 0, p.opts.MovieUdta)
		relocated = true
	}
	if err != nil {
		return nil, false, err
	}
	return h, relocated, nil
}

// Layout is the final file a Planner decided: its header bytes, where the media start
// and where each sample lands.
type Layout struct {
	// Header is the bytes in front of the media (ftyp, moov, free with zeros, the mdat
	// header): the file's first MediaStart bytes.
	Header     []byte
	MediaStart int64
	Size       int64 // of the whole file
	// Relocated: the header did not fit the reserve, the compact one is used (a Writer
	// moves the media behind it).
	Relocated bool
	x         *Index
}

// Plan places what is held back and decides the final file, with tracks as a Writer's
// Finish takes them (the moov order, by Track.ID). Samples added after it are not in it.
func (p *Planner) Plan(tracks []*media.Track) (Layout, error) {
	h, relocated, err := p.plan(tracks)
	if err != nil {
		return Layout{}, err
	}
	var b bytes.Buffer
	b.Grow(int(h.size()))
	if err := h.writeHead(&b); err != nil {
		return Layout{}, err
	}
	b.Write(make([]byte, h.pad))
	b.Write(h.mdat)
	return Layout{Header: b.Bytes(), MediaStart: h.size(), Size: h.size() + p.x.MediaSize, Relocated: relocated, x: &p.x}, nil
}

// Placement is where one sample lands in the file.
type Placement struct {
	Track  *media.Track
	Sample int   // 0-based, in the track's decode order: the Sample-th sample added of Track
	Offset int64 // in the file
	Size   uint32
}

// Samples yields every sample in file order with its offset in the file.
func (l Layout) Samples() iter.Seq[Placement] {
	return func(yield func(Placement) bool) {
		if l.x == nil {
			return
		}
		for _, c := range l.x.Chunks {
			t := l.x.Tracks[c.Track]
			off := l.MediaStart + c.Offset
			for i := c.FirstSample; i < c.FirstSample+c.Count; i++ {
				size := t.sizes.at(int(i))
				if !yield(Placement{Track: t.Track, Sample: int(i), Offset: off, Size: size}) {
					return
				}
				off += int64(size)
			}
		}
	}
}
