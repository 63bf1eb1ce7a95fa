package mp4

import "github.com/stream-downloads/caddy-stream-downloads/packager/media"

// This file writes the sample table box, one function per table. The tables are derived
// from the Index as they are written (timing.go), and written twice (measured, then
// written): nothing per sample is kept beyond the Index.

// writeStbl writes stbl for t: stsd, stts, ctts (if any CTO), stss (video with non-sync
// samples), stsc, stsz and the chunk offsets.
func writeStbl(w *boxWriter, x *Index, t *TrackIndex, mediaStart int64, co64 bool) error {
	w.open("stbl")
	if err := writeStsd(w, t); err != nil {
		return err
	}
	writeStts(w, t)
	writeCtts(w, t)
	if t.Track.Kind == media.Video && len(t.SyncSamples) != t.Len() {
		writeStss(w, t)
	}
	chunks := trackChunks(x, x.byTrack[t.Track])
	writeStsc(w, chunks)
	writeStsz(w, t)
	writeChunkOffsets(w, chunks, mediaStart, co64)
	w.close()
	return nil
}

// writeStsd writes the sample description: the one sample entry of t's codec.
func writeStsd(w *boxWriter, t *TrackIndex) error {
	w.full("stsd", 0, 0)
	w.u32(1)
	if err := sampleEntry(w, t); err != nil {
		return err
	}
	w.close()
	return nil
}

// writeStts writes the decoding time deltas.
func writeStts(w *boxWriter, t *TrackIndex) {
	stts := sttsRuns(t)
	w.full("stts", 0, 0)
	w.u32(count(stts))
	for r := range stts {
		w.u32(r.Count)
		w.u32(uint32(r.Value))
	}
	w.close()
}

// writeCtts writes the composition offsets, none when every one is 0; version 1 (signed)
// when one is negative.
func writeCtts(w *boxWriter, t *TrackIndex) {
	cr, neg := cttsRuns(t)
	if cr == nil {
		return
	}
	w.full("ctts", vers(neg), 0)
	w.u32(count(cr))
	for r := range cr {
		w.u32(r.Count)
		w.u32(uint32(int32(r.Value)))
	}
	w.close()
}

// writeStss writes the sync sample numbers.
func writeStss(w *boxWriter, t *TrackIndex) {
	w.full("stss", 0, 0)
	w.u32(uint32(len(t.SyncSamples)))
	for _, n := range t.SyncSamples {
		w.u32(n)
	}
	w.close()
}

// writeStsc writes the sample-to-chunk table of chunks.
func writeStsc(w *boxWriter, chunks []Chunk) {
	stsc := stscEntries(chunks)
	w.full("stsc", 0, 0)
	w.u32(uint32(len(stsc)))
	for _, e := range stsc {
		w.u32(e.FirstChunk)
		w.u32(e.SamplesPerChunk)
		w.u32(1)
	}
	w.close()
}

// writeStsz writes each sample's size (sample_size 0: they differ).
func writeStsz(w *boxWriter, t *TrackIndex) {
	w.full("stsz", 0, 0)
	w.u32(0)
	w.u32(uint32(t.Len()))
	for _, s := range t.samples() {
		w.u32(s.Size)
	}
	w.close()
}

// writeChunkOffsets writes stco, or co64 when an offset passes 4 GiB, with the file
// offsets of chunks (mediaStart + Chunk.Offset).
func writeChunkOffsets(w *boxWriter, chunks []Chunk, mediaStart int64, co64 bool) {
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
}
