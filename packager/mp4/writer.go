package mp4

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// Options tunes a Writer.
type Options struct {
	// Brand selects the ftyp (BrandMP4 by default, BrandM4A for audio-only).
	Brand Brand
	// ExpectedDuration is a hint (e.g. the playlist's total duration) from which the space
	// reserved for the header in front of the media is computed.
	ExpectedDuration time.Duration
	// Reserve overrides the reserved header space in bytes (tests; 0: derived).
	Reserve int64
}

// reserveFor is the space reserved for ftyp+moov+free+mdat header: a deterministic
// function of the options only, so the same input always gives the same bytes.
// ReserveBytesPerSecond covers 60 fps video with per-frame chunks plus 48 kHz AAC.
func reserveFor(o Options) int64 {
	if o.Reserve > 0 {
		return o.Reserve
	}
	secs := int64((o.ExpectedDuration + time.Second - 1) / time.Second)
	r := 16<<10 + secs*ReserveBytesPerSecond
	return (r + 4095) &^ 4095
}

// ReserveBytesPerSecond is the header space reserved per second of ExpectedDuration.
const ReserveBytesPerSecond = 3 << 10

// Info describes a finished file.
type Info struct {
	Size       int64
	Duration   time.Duration
	HeaderSize int64 // bytes before the media (ftyp+moov+free+mdat header)
	Relocated  bool  // the reserve was too small: the media was moved once behind a larger header
	Tracks     []TrackInfo
}

// TrackInfo are per-track facts for logs.
type TrackInfo struct {
	ID       int
	Kind     media.Kind
	Codec    media.Codec
	Samples  int
	Bytes    int64
	Duration time.Duration // presentation duration
	Start    time.Duration // delay of the track's first presented sample (empty edit)
}

// Writer writes one progressive MP4. Media bytes go to disk at a reserved offset as they
// arrive; only the Index stays in memory.
type Writer struct {
	path    string
	opts    Options
	reserve int64
	f       *os.File
	bw      *bufio.Writer
	x       Index
	err     error
	done    bool
}

// Create starts writing a progressive MP4 at path (a temp path the caller chose; the
// caller renames it when Finish succeeded).
func Create(path string, opts Options) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	w := &Writer{path: path, opts: opts, reserve: reserveFor(opts), f: f}
	if _, err := f.Seek(w.reserve, io.SeekStart); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	w.bw = bufio.NewWriterSize(f, 1<<20)
	return w, nil
}

// WriteSample appends a sample's data to the media and its entry to the index.
func (w *Writer) WriteSample(s media.Sample) error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return errors.New("mp4: write after Finish/Abort")
	}
	if err := w.x.Add(s, int64(len(s.Data))); err != nil {
		w.err = err
		return err
	}
	if _, err := w.bw.Write(s.Data); err != nil {
		w.err = fmt.Errorf("mp4: writing media: %w", err)
		return w.err
	}
	return nil
}

// Finish writes ftyp+moov(+free)+mdat header in front of the media so the file reads
// ftyp, moov, mdat; fsyncs and closes. On error the file is removed.
func (w *Writer) Finish(tracks []*media.Track) (Info, error) {
	if w.done {
		return Info{}, errors.New("mp4: Finish after Finish/Abort")
	}
	info, err := w.finish(tracks)
	w.done = true
	if err != nil {
		w.f.Close()
		os.Remove(w.path)
		return Info{}, err
	}
	return info, nil
}

func (w *Writer) finish(tracks []*media.Track) (Info, error) {
	if w.err != nil {
		return Info{}, w.err
	}
	if err := w.bw.Flush(); err != nil {
		return Info{}, fmt.Errorf("mp4: writing media: %w", err)
	}
	info := Info{}
	hdr, err := BuildHeader(&w.x, tracks, w.opts.Brand, w.reserve)
	if errors.Is(err, ErrHeaderTooLarge) {
		if err := w.relocate(tracks); err != nil {
			return Info{}, err
		}
		info.Relocated = true
		hdr, err = BuildHeader(&w.x, tracks, w.opts.Brand, 0)
		if err != nil {
			return Info{}, err
		}
	} else if err != nil {
		return Info{}, err
	} else {
		if _, err := w.f.WriteAt(hdr, 0); err != nil {
			return Info{}, fmt.Errorf("mp4: writing header: %w", err)
		}
		if err := w.f.Sync(); err != nil {
			return Info{}, err
		}
		if err := w.f.Close(); err != nil {
			return Info{}, err
		}
	}
	info.HeaderSize = int64(len(hdr))
	info.Size = info.HeaderSize + w.x.MediaSize
	w.fillInfo(&info, tracks)
	return info, nil
}

// relocate writes the compact header into a new file, moves the media after it (one
// copy, copy_file_range on Linux) and renames the new file over w.path.
func (w *Writer) relocate(tracks []*media.Track) error {
	hdr, err := BuildHeader(&w.x, tracks, w.opts.Brand, 0)
	if err != nil {
		return err
	}
	tmp := w.path + ".relocate"
	nf, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		nf.Close()
		os.Remove(tmp)
		return err
	}
	if _, err := nf.Write(hdr); err != nil {
		return fail(err)
	}
	if _, err := w.f.Seek(w.reserve, io.SeekStart); err != nil {
		return fail(err)
	}
	n, err := io.Copy(nf, &io.LimitedReader{R: w.f, N: w.x.MediaSize})
	if err != nil {
		return fail(err)
	}
	if n != w.x.MediaSize {
		return fail(fmt.Errorf("mp4: moved %d of %d media bytes", n, w.x.MediaSize))
	}
	if err := nf.Sync(); err != nil {
		return fail(err)
	}
	if err := nf.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	w.f.Close()
	if err := os.Rename(tmp, w.path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func (w *Writer) fillInfo(info *Info, tracks []*media.Track) {
	order, err := trackOrder(&w.x, tracks)
	if err != nil {
		return
	}
	tims, edits := trackEdits(order)
	var movie uint64
	for i, t := range order {
		var total, start uint64
		for _, e := range edits[i] {
			total += e.Duration
			if e.MediaTime < 0 {
				start += e.Duration
			}
		}
		movie = max(movie, total)
		var bytes int64
		for _, s := range t.Samples {
			bytes += int64(s.Size)
		}
		info.Tracks = append(info.Tracks, TrackInfo{
			ID: t.Track.ID, Kind: t.Track.Kind, Codec: t.Track.Codec,
			Samples: len(t.Samples), Bytes: bytes,
			Duration: time.Duration(rescale(tims[i].presDur, t.Track.Timescale, 1e6)) * time.Microsecond,
			Start:    time.Duration(start) * time.Second / MovieTimescale,
		})
	}
	info.Duration = time.Duration(movie) * time.Second / MovieTimescale
}

// Abort closes and removes what the Writer wrote.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	os.Remove(w.path)
	os.Remove(w.path + ".relocate")
}
