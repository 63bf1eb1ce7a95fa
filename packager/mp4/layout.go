package mp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"sort"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// MovieTimescale is the timescale of mvhd, tkhd and elst durations (as ffmpeg uses).
// Every value in it is rounded once from exact track times, so nothing accumulates.
const MovieTimescale = 1000

// Brand selects the ftyp box.
type Brand int

const (
	// BrandMP4 is major isom, minor 512, compatible isom iso2 mp41 plus avc1 with H.264
	// and av01 with AV1, as ffmpeg writes them (the video download types).
	BrandMP4 Brand = iota
	// BrandM4A is for the audio download type: major "M4A ", compatible M4A isom iso2
	// mp41 when every track is AAC; otherwise (AC-3, E-AC-3, MP3/MP2, Opus) what BrandMP4
	// writes for them, major isom, compatible isom iso2 mp41 (the SPEC keeps "M4A " for
	// AAC/ALAC; ffmpeg writes these brands too, adding dby1 for AC-3 and E-AC-3).
	BrandM4A
)

// ErrHeaderTooLarge is returned by BuildHeader when the header does not fit in front of
// the given media start offset.
var ErrHeaderTooLarge = errors.New("mp4: header larger than the space reserved for it")

// HeaderSizeError says how large the header would be.
type HeaderSizeError struct{ Need, Have int64 }

func (e *HeaderSizeError) Error() string {
	return fmt.Sprintf("mp4: header needs %d bytes, %d reserved", e.Need, e.Have)
}
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
	h, err := planHeader(x, tracks, brand, mediaStart)
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
// header (writeHead), pad zero bytes, the mdat header. moov is measured, not kept: it
// is written as it is generated. The Writer leaves the pad a hole in the file.
type header struct {
	x     *Index
	order []*TrackIndex
	start int64 // media start
	co64  bool
	ftyp  []byte
	moov  []uint32 // sizes of moov's boxes in the order they open; moov[0] is moov's
	free  []byte   // the free box's header, if any
	pad   int64    // zero bytes of the free box after its header
	mdat  []byte   // mdat box header
}

func (h *header) headSize() int64 { return int64(len(h.ftyp)) + int64(h.moov[0]) + int64(len(h.free)) }
func (h *header) size() int64     { return h.headSize() + h.pad + int64(len(h.mdat)) }

// writeHead writes ftyp, moov and the free box's header to out.
func (h *header) writeHead(out io.Writer) error {
	if _, err := out.Write(h.ftyp); err != nil {
		return err
	}
	w := &boxWriter{out: out, sizes: h.moov}
	if err := buildMoov(w, h.x, h.order, h.start, h.co64); err != nil {
		return err
	}
	if w.flush(); w.err != nil {
		return w.err
	}
	if w.opened != len(h.moov) {
		return errors.New("mp4: fewer boxes than measured")
	}
	_, err := out.Write(h.free)
	return err
}

// measureMoov returns the sizes of moov's boxes (they do not depend on the media start,
// only on co64).
func measureMoov(x *Index, order []*TrackIndex, co64 bool) ([]uint32, error) {
	w := &boxWriter{measure: true}
	if err := buildMoov(w, x, order, 0, co64); err != nil {
		return nil, err
	}
	return w.sizes, nil
}

func planHeader(x *Index, tracks []*media.Track, brand Brand, mediaStart int64) (*header, error) {
	order, err := trackOrder(x, tracks)
	if err != nil {
		return nil, err
	}
	h := &header{x: x, order: order, ftyp: ftypBox(brand, order), mdat: mdatHeader(x.MediaSize)}
	var lastChunk int64
	if n := len(x.Chunks); n > 0 {
		lastChunk = x.Chunks[n-1].Offset
	}
	fixed := int64(len(h.ftyp) + len(h.mdat))

	start, co64 := mediaStart, false
	if start == 0 {
		if h.moov, err = measureMoov(x, order, false); err != nil {
			return nil, err
		}
		start = fixed + int64(h.moov[0])
		if start+lastChunk > math.MaxUint32 {
			// co64 makes moov larger, which only moves the media further up.
			co64 = true
			if h.moov, err = measureMoov(x, order, true); err != nil {
				return nil, err
			}
			start = fixed + int64(h.moov[0])
		}
	} else {
		co64 = start+lastChunk > math.MaxUint32
		if h.moov, err = measureMoov(x, order, co64); err != nil {
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

func mdatHeader(mediaSize int64) []byte {
	if mediaSize+8 <= math.MaxUint32 {
		return append(be32(nil, uint32(mediaSize+8)), "mdat"...)
	}
	b := be32(nil, 1)
	b = append(b, "mdat"...)
	return be64(b, uint64(mediaSize+16))
}

func hasCodec(order []*TrackIndex, c media.Codec) bool {
	for _, t := range order {
		if t.Track.Codec == c {
			return true
		}
	}
	return false
}

// ftypBox writes the ftyp box for the tracks of order (see Brand). Like ffmpeg, the avc1
// compatible brand is listed only when there is H.264 (an hvc1 file is "isom iso2 mp41",
// as ffmpeg writes it), and av01 when there is AV1 (AV1-ISOBMFF 2.1; ffmpeg 5.1 writes
// "isom av01 iso2 mp41").
func ftypBox(brand Brand, order []*TrackIndex) []byte {
	var w boxWriter
	w.open("ftyp")
	if brand == BrandM4A && allCodec(order, media.AAC) {
		w.str("M4A ")
		w.u32(512)
		w.str("M4A isomiso2mp41")
	} else {
		w.str("isom")
		w.u32(512)
		w.str("isom")
		if hasCodec(order, media.AV1) {
			w.str("av01")
		}
		w.str("iso2")
		if hasCodec(order, media.H264) {
			w.str("avc1")
		}
		w.str("mp41")
	}
	w.close()
	return w.b
}

func allCodec(order []*TrackIndex, c media.Codec) bool {
	for _, t := range order {
		if t.Track.Codec != c {
			return false
		}
	}
	return true
}

// trackTiming holds the derived timing facts of one track, in its timescale.
type trackTiming struct {
	firstDTS    int64
	earliestPTS int64 // minimum DTS+CTO, after the priming samples
	mediaDur    uint64
	presDur     uint64 // latest presentation end - earliestPTS
}

// timing derives a track's timing facts. The decoder priming at the start of an Opus
// track (primingTicks) is not presented: the track starts after it.
func timing(t *TrackIndex) trackTiming {
	tt := trackTiming{firstDTS: t.FirstDTS, earliestPTS: math.MaxInt64}
	dts := t.FirstDTS
	var end int64 = math.MinInt64
	for _, s := range t.samples() {
		d := s.Duration
		pts := dts + int64(s.CTO)
		tt.earliestPTS = min(tt.earliestPTS, pts)
		end = max(end, pts+int64(d))
		dts += int64(d)
		tt.mediaDur += uint64(d)
	}
	tt.presDur = uint64(end - tt.earliestPTS)
	if skip := primingTicks(t.Track); skip > 0 && uint64(skip) < tt.presDur {
		tt.earliestPTS += skip
		tt.presDur -= uint64(skip)
	}
	return tt
}

// toNanos converts ticks in timescale ts to nanoseconds without overflow for any
// realistic timestamp.
func toNanos(ticks int64, ts uint32) int64 {
	q, r := ticks/int64(ts), ticks%int64(ts)
	if r < 0 {
		q--
		r += int64(ts)
	}
	return q*1e9 + r*1e9/int64(ts)
}

// rescale converts v from timescale from to timescale to, rounding to nearest.
func rescale(v uint64, from, to uint32) uint64 {
	q, r := v/uint64(from), v%uint64(from)
	return q*uint64(to) + (r*uint64(to)+uint64(from)/2)/uint64(from)
}

// Edit is one elst entry; MediaTime -1 is an empty edit.
type Edit struct {
	Duration  uint64 // movie timescale
	MediaTime int64  // track timescale
}

// editLists computes ffmpeg-style edit lists: each track starts at its earliest
// presentation time; the earliest track starts at 0 and the others get an empty edit for
// their delay; the normal edit skips the B-frame delay (earliest PTS - first DTS) and an
// Opus track's priming (media_time = PreSkip, as the Opus-in-ISOBMFF spec and ffmpeg have it).
func editLists(tims []trackTiming, timescales []uint32) [][]Edit {
	starts := make([]int64, len(tims))
	global := int64(math.MaxInt64)
	for i, tt := range tims {
		starts[i] = toNanos(tt.earliestPTS, timescales[i])
		global = min(global, starts[i])
	}
	out := make([][]Edit, len(tims))
	for i, tt := range tims {
		var el []Edit
		if delay := starts[i] - global; delay > 0 {
			if d := rescale(uint64(delay), 1e9, MovieTimescale); d > 0 {
				el = append(el, Edit{Duration: d, MediaTime: -1})
			}
		}
		el = append(el, Edit{
			Duration:  rescale(tt.presDur, timescales[i], MovieTimescale),
			MediaTime: tt.earliestPTS - tt.firstDTS,
		})
		out[i] = el
	}
	return out
}

// Run is one run-length entry (stts, ctts).
type Run struct {
	Count uint32
	Value int64
}

// sttsRuns yields the run-length encoding of the sample durations.
func sttsRuns(t *TrackIndex) iter.Seq[Run] {
	return runs(t, func(s SampleEntry) int64 { return int64(s.Duration) })
}

// cttsRuns yields the run-length encoding of the composition offsets (nil when every
// CTO is 0), and says whether any is negative.
func cttsRuns(t *TrackIndex) (iter.Seq[Run], bool) {
	if t.ctos.len() == 0 {
		return nil, false
	}
	negative := false
	for _, s := range t.samples() {
		negative = negative || s.CTO < 0
	}
	return runs(t, func(s SampleEntry) int64 { return int64(s.CTO) }), negative
}

// runs yields the run-length encoding of v over t's samples, computed as it goes (a
// 60-minute video with B-frames has ~90k ctts runs).
func runs(t *TrackIndex, v func(SampleEntry) int64) iter.Seq[Run] {
	return func(yield func(Run) bool) {
		var r Run
		for _, s := range t.samples() {
			x := v(s)
			if r.Count > 0 && r.Value == x {
				r.Count++
				continue
			}
			if r.Count > 0 && !yield(r) {
				return
			}
			r = Run{1, x}
		}
		if r.Count > 0 {
			yield(r)
		}
	}
}

func count[T any](seq iter.Seq[T]) uint32 {
	var n uint32
	for range seq {
		n++
	}
	return n
}

// StscEntry is one sample-to-chunk entry (sample description index is always 1).
type StscEntry struct{ FirstChunk, SamplesPerChunk uint32 }

// trackChunks returns the chunks of track ti in media order.
func trackChunks(x *Index, ti uint32) []Chunk {
	var cs []Chunk
	for _, c := range x.Chunks {
		if c.Track == ti {
			cs = append(cs, c)
		}
	}
	return cs
}

func stscEntries(chunks []Chunk) []StscEntry {
	var out []StscEntry
	for i, c := range chunks {
		if n := len(out); n > 0 && out[n-1].SamplesPerChunk == c.Count {
			continue
		}
		out = append(out, StscEntry{FirstChunk: uint32(i + 1), SamplesPerChunk: c.Count})
	}
	return out
}

// trackEdits computes the timing and the edit list of each track of order.
func trackEdits(order []*TrackIndex) ([]trackTiming, [][]Edit) {
	tims := make([]trackTiming, len(order))
	tss := make([]uint32, len(order))
	for i, t := range order {
		tims[i] = timing(t)
		tss[i] = t.Track.Timescale
	}
	return tims, editLists(tims, tss)
}

// buildMoov writes moov through w.
func buildMoov(w *boxWriter, x *Index, order []*TrackIndex, mediaStart int64, co64 bool) error {
	tims, edits := trackEdits(order)
	var movieDur uint64
	tkDur := make([]uint64, len(order))
	for i, el := range edits {
		for _, e := range el {
			tkDur[i] += e.Duration
		}
		movieDur = max(movieDur, tkDur[i])
	}

	w.open("moov")
	// mvhd
	v1 := movieDur > math.MaxUint32
	w.full("mvhd", vers(v1), 0)
	w.times(v1)
	w.u32(MovieTimescale)
	w.dur(v1, movieDur)
	w.u32(0x00010000) // rate
	w.u16(0x0100)     // volume
	w.zeros(10)
	w.matrix()
	w.zeros(24)
	w.u32(uint32(order[len(order)-1].Track.ID + 1))
	w.close()

	for i, t := range order {
		ti := x.byTrack[t.Track]
		if err := writeTrak(w, x, ti, t, tims[i], edits[i], tkDur[i], mediaStart, co64); err != nil {
			return err
		}
	}
	w.close()
	return w.err
}

func vers(v1 bool) byte {
	if v1 {
		return 1
	}
	return 0
}

func writeTrak(w *boxWriter, x *Index, ti uint32, t *TrackIndex, tt trackTiming, edits []Edit, tkDur uint64, mediaStart int64, co64 bool) error {
	tr := t.Track
	video := tr.Kind == media.Video
	w.open("trak")

	v1 := tkDur > math.MaxUint32
	w.full("tkhd", vers(v1), 3) // enabled, in movie
	w.times(v1)
	w.u32(uint32(tr.ID))
	w.u32(0)
	w.dur(v1, tkDur)
	w.zeros(8)
	w.u16(0) // layer
	w.u16(0) // alternate group
	if video {
		w.u16(0)
	} else {
		w.u16(0x0100)
	}
	w.u16(0)
	w.matrix()
	if video {
		w.u32(uint32(tr.Width) << 16)
		w.u32(uint32(tr.Height) << 16)
	} else {
		w.u32(0)
		w.u32(0)
	}
	w.close()

	w.open("edts")
	ev1 := false
	for _, e := range edits {
		if e.Duration > math.MaxUint32 || e.MediaTime > math.MaxInt32 || e.MediaTime < math.MinInt32 {
			ev1 = true
		}
	}
	w.full("elst", vers(ev1), 0)
	w.u32(uint32(len(edits)))
	for _, e := range edits {
		if ev1 {
			w.u64(e.Duration)
			w.u64(uint64(e.MediaTime))
		} else {
			w.u32(uint32(e.Duration))
			w.u32(uint32(int32(e.MediaTime)))
		}
		w.u16(1) // media rate 1.0
		w.u16(0)
	}
	w.close()
	w.close()

	w.open("mdia")
	mv1 := tt.mediaDur > math.MaxUint32
	w.full("mdhd", vers(mv1), 0)
	w.times(mv1)
	w.u32(tr.Timescale)
	w.dur(mv1, tt.mediaDur)
	w.u16(0x55c4) // "und"
	w.u16(0)
	w.close()

	w.full("hdlr", 0, 0)
	w.u32(0)
	if video {
		w.str("vide")
	} else {
		w.str("soun")
	}
	w.zeros(12)
	if video {
		w.str("VideoHandler\x00")
	} else {
		w.str("SoundHandler\x00")
	}
	w.close()

	w.open("minf")
	if video {
		w.full("vmhd", 0, 1)
		w.zeros(8)
	} else {
		w.full("smhd", 0, 0)
		w.zeros(4)
	}
	w.close()
	w.open("dinf")
	w.full("dref", 0, 0)
	w.u32(1)
	w.full("url ", 0, 1)
	w.close()
	w.close()
	w.close()

	w.open("stbl")
	w.full("stsd", 0, 0)
	w.u32(1)
	if err := sampleEntry(w, t); err != nil {
		return err
	}
	w.close()

	stts := sttsRuns(t)
	w.full("stts", 0, 0)
	w.u32(count(stts))
	for r := range stts {
		w.u32(r.Count)
		w.u32(uint32(r.Value))
	}
	w.close()

	if cr, neg := cttsRuns(t); cr != nil {
		w.full("ctts", vers(neg), 0)
		w.u32(count(cr))
		for r := range cr {
			w.u32(r.Count)
			w.u32(uint32(int32(r.Value)))
		}
		w.close()
	}

	if video && len(t.SyncSamples) != t.Len() {
		w.full("stss", 0, 0)
		w.u32(uint32(len(t.SyncSamples)))
		for _, n := range t.SyncSamples {
			w.u32(n)
		}
		w.close()
	}

	chunks := trackChunks(x, ti)
	stsc := stscEntries(chunks)
	w.full("stsc", 0, 0)
	w.u32(uint32(len(stsc)))
	for _, e := range stsc {
		w.u32(e.FirstChunk)
		w.u32(e.SamplesPerChunk)
		w.u32(1)
	}
	w.close()

	w.full("stsz", 0, 0)
	w.u32(0)
	w.u32(uint32(t.Len()))
	for _, s := range t.samples() {
		w.u32(s.Size)
	}
	w.close()

	if co64 {
		w.full("co64", 0, 0)
	} else {
		w.full("stco", 0, 0)
	}
	w.u32(uint32(len(chunks)))
	for _, c := range chunks {
		off := mediaStart + c.Offset
		if co64 {
			w.u64(uint64(off))
		} else {
			w.u32(uint32(off))
		}
	}
	w.close()

	w.close() // stbl
	w.close() // minf
	w.close() // mdia
	w.close() // trak
	return nil
}

// boxWriter writes nested boxes. By default it builds them in b, patching each size
// on close. The moov of a long video is MBs, so it can also stream them in two passes
// of the same code: measuring (box sizes recorded in the order the boxes open, the
// bytes counted and dropped), then writing to out, each box's size known when it opens.
type boxWriter struct {
	b       []byte
	stack   []boxStart
	measure bool      // measuring pass
	out     io.Writer // writing pass
	sizes   []uint32  // streaming: the boxes' sizes in the order they open
	opened  int       // boxes opened so far
	n       int64     // bytes handed out of b (streaming)
	err     error     // first error of a streaming pass
}

type boxStart struct {
	pos int64 // position of the box's first byte
	i   int   // the box's number in open order
}

func (w *boxWriter) streaming() bool { return w.measure || w.out != nil }

func (w *boxWriter) pos() int64 { return w.n + int64(len(w.b)) }

func (w *boxWriter) open(typ string) {
	i := w.opened
	w.opened++
	w.stack = append(w.stack, boxStart{w.pos(), i})
	switch {
	case w.measure:
		w.sizes = append(w.sizes, 0)
		w.u32(0)
	case w.out != nil && i < len(w.sizes):
		w.u32(w.sizes[i])
	case w.out != nil:
		w.fail(errors.New("mp4: more boxes than measured"))
		w.u32(0)
	default:
		w.u32(0)
	}
	w.str(typ)
}

func (w *boxWriter) full(typ string, version byte, flags uint32) {
	w.open(typ)
	w.u32(uint32(version)<<24 | flags&0xffffff)
}

func (w *boxWriter) close() {
	top := w.stack[len(w.stack)-1]
	w.stack = w.stack[:len(w.stack)-1]
	size := w.pos() - top.pos
	if size > math.MaxUint32 {
		w.fail(errors.New("mp4: box larger than 4 GiB"))
		return
	}
	switch {
	case w.measure:
		w.sizes[top.i] = uint32(size)
	case w.out != nil:
		if i := top.i; i < len(w.sizes) && w.sizes[i] != uint32(size) {
			w.fail(fmt.Errorf("mp4: box %d is %d bytes, measured %d", i, size, w.sizes[i]))
		}
	default:
		binary.BigEndian.PutUint32(w.b[top.pos:], uint32(size))
	}
}

func (w *boxWriter) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// spill hands b out when streaming, every 64 KiB.
func (w *boxWriter) spill() {
	if len(w.b) >= 64<<10 && w.streaming() {
		w.flush()
	}
}

// flush hands out b (streaming).
func (w *boxWriter) flush() {
	if w.out != nil && w.err == nil {
		if _, err := w.out.Write(w.b); err != nil {
			w.fail(err)
		}
	}
	w.n += int64(len(w.b))
	w.b = w.b[:0]
}

func (w *boxWriter) u16(v uint16) { w.b = append(w.b, byte(v>>8), byte(v)); w.spill() }
func (w *boxWriter) u32(v uint32) { w.b = be32(w.b, v); w.spill() }
func (w *boxWriter) u64(v uint64) { w.b = be64(w.b, v); w.spill() }
func (w *boxWriter) str(s string) { w.b = append(w.b, s...); w.spill() }
func (w *boxWriter) raw(b []byte) { w.b = append(w.b, b...); w.spill() }
func (w *boxWriter) zeros(n int)  { w.b = append(w.b, make([]byte, n)...); w.spill() }
func (w *boxWriter) times(v1 bool) { // creation and modification time: 0 (deterministic)
	if v1 {
		w.zeros(16)
	} else {
		w.zeros(8)
	}
}

func (w *boxWriter) dur(v1 bool, d uint64) {
	if v1 {
		w.u64(d)
	} else {
		w.u32(uint32(d))
	}
}

func (w *boxWriter) matrix() {
	for _, v := range []uint32{0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000} {
		w.u32(v)
	}
}

func be32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func be64(b []byte, v uint64) []byte {
	return be32(be32(b, uint32(v>>32)), uint32(v))
}
