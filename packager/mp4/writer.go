package mp4

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"syscall"
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
	// MovieUdta are boxes for moov's udta (the Nero chapters, chpl), whole; nil: none.
	MovieUdta []byte
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
// they arrive, where its Planner places them; only the Index stays in memory.
type Writer struct {
	opts  Options
	p     *Planner // every layout decision: the Writer only copies bytes
	f     File
	bw    *bufio.Writer
	heldB []byte // the data of the audio samples the Planner holds back

	err  error
	done bool
}

// NewWriter starts writing a progressive MP4 into f, which is empty. The caller owns f:
// it makes it durable and publishes it once Finish succeeded, or drops it.
func NewWriter(f File, opts Options) *Writer {
	w := &Writer{opts: opts, p: NewPlanner(opts), f: f}
	w.bw = bufio.NewWriterSize(&writeBehind{f: f, off: w.p.reserve, started: w.p.reserve}, 1<<20)
	return w
}

// WriteSample appends a sample's data to the media and its entry to the index, in the
// order the Planner decides: audio samples are held back and written in runs of about a
// second (holdAudio), since demuxers hand out audio and video a frame or two at a time,
// and a chunk per frame would make the index grow several times faster than the samples.
func (w *Writer) WriteSample(s media.Sample) error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return errors.New("mp4: write after Finish")
	}
	flushed, now, err := w.p.Add(s, int64(len(s.Data)))
	if err != nil {
		w.err = err
		return err
	}
	if flushed > 0 {
		if err := w.writeHeld(); err != nil {
			return err
		}
	}
	if now {
		return w.write(s.Data)
	}
	w.heldB = append(w.heldB, s.Data...) // the caller may reuse s.Data
	return nil
}

// Audio is held back for holdAudio seconds of it at most, and holdAudioBytes.
const (
	holdAudio      = 1
	holdAudioBytes = 256 << 10
)

// writeHeld writes the data of the samples held back, which the Planner just placed
// (all of them: it places what it holds at once).
func (w *Writer) writeHeld() error {
	err := w.write(w.heldB)
	w.heldB = w.heldB[:0]
	return err
}

func (w *Writer) write(b []byte) error {
	if _, err := w.bw.Write(b); err != nil {
		w.err = fmt.Errorf("mp4: writing media: %w", err)
		return w.err
	}
	return nil
}

// Finish writes ftyp+moov(+free)+mdat header in front of the media so the file reads
// ftyp, moov, mdat, as the Planner plans it. After an error the File holds no valid MP4.
func (w *Writer) Finish(tracks []*media.Track) (Info, error) {
	if w.done {
		return Info{}, errors.New("mp4: Finish after Finish")
	}
	w.done = true
	if w.err != nil {
		return Info{}, w.err
	}
	if _, err := w.p.Flush(); err != nil {
		return Info{}, err
	}
	if err := w.writeHeld(); err != nil {
		return Info{}, err
	}
	if err := w.bw.Flush(); err != nil {
		return Info{}, fmt.Errorf("mp4: writing media: %w", err)
	}
	info := Info{}
	hdr, relocated, err := w.p.plan(tracks)
	if err != nil {
		return Info{}, err
	}
	if relocated {
		if err := w.relocate(hdr); err != nil {
			return Info{}, err
		}
		info.Relocated = true
	} else if err := writeHeader(w.f, hdr); err != nil {
		return Info{}, err
	}
	info.HeaderSize = hdr.size()
	info.Size = info.HeaderSize + w.p.x.MediaSize
	return info, nil
}

// relocate moves the media right behind hdr, the compact header, which does not fit the
// reserve (larger, or smaller by less than a free box), and writes it in front.
// Media moving up are moved from the end backwards, media moving down from the start,
// so that none is overwritten before it is read.
func (w *Writer) relocate(hdr *header) error {
	size, reserve := w.p.x.MediaSize, w.p.reserve
	shift := hdr.size() - reserve
	buf := make([]byte, relocateBlock)
	for done := int64(0); done < size; {
		n := min(size-done, relocateBlock)
		from := reserve + done // moving down: the next block from the start
		if shift > 0 {
			from = reserve + size - done - n // moving up: from the end
		}
		if _, err := w.f.ReadAt(buf[:n], from); err != nil {
			return fmt.Errorf("mp4: moving the media: %w", err)
		}
		if _, err := w.f.WriteAt(buf[:n], from+shift); err != nil {
			return fmt.Errorf("mp4: moving the media: %w", err)
		}
		done += n
	}
	if shift < 0 {
		if err := w.f.Truncate(hdr.size() + size); err != nil {
			return fmt.Errorf("mp4: moving the media: %w", err)
		}
	}
	return writeHeader(w.f, hdr)
}

// relocateBlock is the unit in which relocate moves the media.
const relocateBlock = 1 << 20

// writeHeader writes h at the start of f, but for the pad (left a hole, which reads as
// zeros).
func writeHeader(f io.WriterAt, h *header) error {
	bw := bufio.NewWriterSize(io.NewOffsetWriter(f, 0), 64<<10)
	if err := h.writeHead(bw); err != nil {
		return fmt.Errorf("mp4: writing header: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("mp4: writing header: %w", err)
	}
	if _, err := f.WriteAt(h.mdat, h.headSize()+h.pad); err != nil {
		return fmt.Errorf("mp4: writing header: %w", err)
	}
	return nil
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
