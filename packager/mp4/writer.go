package mp4

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/cespare/xxhash/v2"

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
	HeaderSize int64 // bytes before the media (ftyp+moov+free+mdat header)
	Relocated  bool  // the reserve was too small: the media was moved once behind a larger header
	// Checksum identifies the content (for ETags); see ChecksumOf.
	Checksum Checksum
}

// Checksum is xxh64 of the bytes before the media followed by xxh64 of the media (both
// big-endian). The Writer computes it as it writes, so that the media need not be read
// back; a whole-file hash is not possible there, the header being known last. It is not
// a cryptographic hash: it tells versions of a video apart, as an ETag must.
type Checksum [16]byte

// ChecksumOf computes the Checksum of a finished file of size bytes whose media start at
// headerSize (Info.HeaderSize).
func ChecksumOf(r io.ReaderAt, headerSize, size int64) (Checksum, error) {
	var c Checksum
	for i, part := range [][2]int64{{0, headerSize}, {headerSize, size}} {
		h := xxhash.New()
		if _, err := io.Copy(h, io.NewSectionReader(r, part[0], part[1]-part[0])); err != nil {
			return c, err
		}
		binary.BigEndian.PutUint64(c[8*i:], h.Sum64())
	}
	return c, nil
}

// File is where a Writer writes: a staging file of the store. The Writer writes the media
// at increasing offsets behind a reserved space and the header last, in front; when the
// header does not fit the reserve it reads the media back to move them (and may cut the
// file shorter). A File that is also
// a syscall.Conn (an *os.File) gets its write-back started as the media arrive.
type File interface {
	io.WriterAt
	io.ReaderAt
	Truncate(size int64) error
}

// Writer writes one progressive MP4. Media bytes go to the File at a reserved offset as
// they arrive; only the Index stays in memory.
type Writer struct {
	opts    Options
	reserve int64
	f       File
	bw      *bufio.Writer
	media   *xxhash.Digest // of the media written so far
	x       Index
	held    []heldSample // audio samples not written yet, their data in heldB
	heldB   []byte

	err  error
	done bool
}

// NewWriter starts writing a progressive MP4 into f, which is empty. The caller owns f:
// it makes it durable and publishes it once Finish succeeded, or drops it.
func NewWriter(f File, opts Options) *Writer {
	w := &Writer{opts: opts, reserve: reserveFor(opts), f: f, media: xxhash.New()}
	w.bw = bufio.NewWriterSize(&writeBehind{f: f, off: w.reserve, started: w.reserve}, 1<<20)
	return w
}

// WriteSample appends a sample's data to the media and its entry to the index. Audio
// samples are held back and written in runs of about a second (holdAudio): demuxers hand
// out audio and video a frame or two at a time, and a chunk per frame would make the
// index grow several times faster than the samples.
func (w *Writer) WriteSample(s media.Sample) error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return errors.New("mp4: write after Finish")
	}
	if s.Track != nil && s.Track.Kind == media.Audio {
		if len(w.held) > 0 {
			first := w.held[0]
			if first.Track != s.Track || s.DTS-first.DTS >= int64(holdAudio*first.Track.Timescale) || len(w.heldB)+len(s.Data) > holdAudioBytes {
				if err := w.writeHeld(); err != nil {
					return err
				}
			}
		}
		w.heldB = append(w.heldB, s.Data...)
		w.held = append(w.held, heldSample{s, len(s.Data)})
		w.held[len(w.held)-1].Data = nil // the caller may reuse it
		return nil
	}
	return w.write(s)
}

type heldSample struct {
	media.Sample
	n int // bytes of data
}

// Audio is held back for holdAudio seconds of it at most, and holdAudioBytes.
const (
	holdAudio      = 1
	holdAudioBytes = 256 << 10
)

func (w *Writer) writeHeld() error {
	off := 0
	for _, h := range w.held {
		s := h.Sample
		s.Data = w.heldB[off : off+h.n]
		off += h.n
		if err := w.write(s); err != nil {
			return err
		}
	}
	w.held, w.heldB = w.held[:0], w.heldB[:0]
	return nil
}

func (w *Writer) write(s media.Sample) error {
	if err := w.x.Add(s, int64(len(s.Data))); err != nil {
		w.err = err
		return err
	}
	if _, err := w.bw.Write(s.Data); err != nil {
		w.err = fmt.Errorf("mp4: writing media: %w", err)
		return w.err
	}
	w.media.Write(s.Data)
	return nil
}

// Finish writes ftyp+moov(+free)+mdat header in front of the media so the file reads
// ftyp, moov, mdat. After an error the File holds no valid MP4.
func (w *Writer) Finish(tracks []*media.Track) (Info, error) {
	if w.done {
		return Info{}, errors.New("mp4: Finish after Finish")
	}
	w.done = true
	if w.err != nil {
		return Info{}, w.err
	}
	if err := w.writeHeld(); err != nil {
		return Info{}, err
	}
	if err := w.bw.Flush(); err != nil {
		return Info{}, fmt.Errorf("mp4: writing media: %w", err)
	}
	info := Info{}
	var hdrSum uint64
	hdr, err := planHeader(&w.x, tracks, w.opts.Brand, w.reserve)
	if errors.Is(err, ErrHeaderTooLarge) {
		if hdr, hdrSum, err = w.relocate(tracks); err != nil {
			return Info{}, err
		}
		info.Relocated = true
	} else if err != nil {
		return Info{}, err
	} else {
		if hdrSum, err = writeHeader(w.f, hdr); err != nil {
			return Info{}, err
		}
	}
	info.HeaderSize = hdr.size()
	info.Size = info.HeaderSize + w.x.MediaSize
	binary.BigEndian.PutUint64(info.Checksum[:8], hdrSum)
	binary.BigEndian.PutUint64(info.Checksum[8:], w.media.Sum64())
	return info, nil
}

// relocate moves the media right behind the compact header, which does not fit the
// reserve (larger, or smaller by less than a free box), and writes that header in front.
// Media moving up are moved from the end backwards, media moving down from the start,
// so that none is overwritten before it is read. It returns the header and its checksum.
func (w *Writer) relocate(tracks []*media.Track) (*header, uint64, error) {
	hdr, err := planHeader(&w.x, tracks, w.opts.Brand, 0)
	if err != nil {
		return nil, 0, err
	}
	shift := hdr.size() - w.reserve
	buf := make([]byte, relocateBlock)
	for done := int64(0); done < w.x.MediaSize; {
		n := min(w.x.MediaSize-done, relocateBlock)
		from := w.reserve + done // moving down: the next block from the start
		if shift > 0 {
			from = w.reserve + w.x.MediaSize - done - n // moving up: from the end
		}
		if _, err := w.f.ReadAt(buf[:n], from); err != nil {
			return nil, 0, fmt.Errorf("mp4: moving the media: %w", err)
		}
		if _, err := w.f.WriteAt(buf[:n], from+shift); err != nil {
			return nil, 0, fmt.Errorf("mp4: moving the media: %w", err)
		}
		done += n
	}
	if shift < 0 {
		if err := w.f.Truncate(hdr.size() + w.x.MediaSize); err != nil {
			return nil, 0, fmt.Errorf("mp4: moving the media: %w", err)
		}
	}
	sum, err := writeHeader(w.f, hdr)
	if err != nil {
		return nil, 0, err
	}
	return hdr, sum, nil
}

// relocateBlock is the unit in which relocate moves the media.
const relocateBlock = 1 << 20

// writeHeader writes h at the start of f, but for the pad (left a hole, which reads as
// zeros), and returns xxh64 of all its bytes.
func writeHeader(f io.WriterAt, h *header) (uint64, error) {
	d := xxhash.New()
	bw := bufio.NewWriterSize(io.NewOffsetWriter(f, 0), 64<<10)
	if err := h.writeHead(io.MultiWriter(bw, d)); err != nil {
		return 0, fmt.Errorf("mp4: writing header: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("mp4: writing header: %w", err)
	}
	if _, err := f.WriteAt(h.mdat, h.headSize()+h.pad); err != nil {
		return 0, fmt.Errorf("mp4: writing header: %w", err)
	}
	var zeros [64 << 10]byte
	for n := h.pad; n > 0; n -= int64(len(zeros)) {
		d.Write(zeros[:min(n, int64(len(zeros)))])
	}
	d.Write(h.mdat)
	return d.Sum64(), nil
}

// writeBehind starts the kernel's write-back of every few MiB as soon as they are
// written, so that the fsync before the file is published waits for the last ones
// only: fsync of a whole 450 MB video took a third as long as packaging it.
type writeBehind struct {
	f            File
	off, started int64 // file offset written up to; write-back started up to
}

const writeBehindBytes = 8 << 20

func (w *writeBehind) Write(b []byte) (int, error) {
	n, err := w.f.WriteAt(b, w.off)
	w.off += int64(n)
	if w.off-w.started >= writeBehindBytes {
		if c, ok := w.f.(syscall.Conn); ok {
			startWriteback(c, w.started, w.off-w.started)
		}
		w.started = w.off
	}
	return n, err
}
