package packager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/stream-downloads/caddy-stream-downloads/packager/chapters"
	"github.com/stream-downloads/caddy-stream-downloads/packager/hls"
	"github.com/stream-downloads/caddy-stream-downloads/packager/lease"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
	"github.com/stream-downloads/caddy-stream-downloads/packager/mp4"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
)

// run packages d and records the outcome; it is the body of one job's goroutine.
func (m *Manager) run(ctx context.Context, d *download, client *hls.Client, s Settings, opt hls.SelectOptions) {
	start := now()
	k := d.rec.Key()
	client, ended := m.startJob(d, client)
	defer ended()
	rec, err := m.pack(ctx, d, client, s, opt)

	m.mu.Lock()
	defer func() {
		m.endPlan(k, rec.ETag)
		d.endResolve() // a job that ended before reading the playlists
		d.cancel()
		m.decide(d) // a Create waiting for the playlists gets the outcome
		close(d.done)
		m.sched.done()
		m.dispatch()
		m.mu.Unlock()
		m.flush() // a refusal's removal from the fleet's bucket
	}()
	fields := []zap.Field{
		zap.String("video", k.Video), zap.String("type", k.Type),
		zap.Int64("bytes", rec.Size), zap.Float64("seconds", now().Sub(start).Seconds()),
	}
	if d.refused != nil {
		m.log.Info("download not created", append(fields, zap.String("outcome", "refused"), zap.String("reason", d.refused.Error()), errDetail(d.refused))...)
		return
	}
	if m.downloads[k] != d {
		m.log.Info("packaging stopped: download deleted", append(fields, zap.String("outcome", "deleted"))...)
		return
	}
	if err != nil && ctx.Err() != nil {
		// Shutdown or reload: the record stays in progress and the next start resumes it
		// (in a fleet: its lease expires, and an instance takes it over).
		m.log.Info("packaging interrupted", append(fields, zap.String("outcome", "interrupted"))...)
		return
	}
	if m.fleet != nil && (errors.Is(err, lease.ErrLost) || errors.Is(err, ErrUnreachable)) {
		// Another instance has it now, or the bucket did not take the file: its lease
		// runs out and an instance (this one too) packages it again once the bucket
		// answers. What the bucket says of it is read again.
		m.log.Warn("packaging stopped: left to the fleet", append(fields, zap.String("outcome", "lost"), zap.Error(err))...)
		d.fleet.read = time.Time{}
		m.later = append(m.later, func() { m.unhold(d) })
		return
	}
	if err != nil && d.anon && !d.media {
		// A stranger's GET of what the origin will not give: nothing stays on disk.
		m.forget(k, d, err)
		m.log.Info("on-demand download not created", append(fields, zap.String("outcome", "refused"), zap.String("reason", d.refused.Error()), errDetail(err))...)
		return
	}
	if err != nil {
		rec = d.rec
		failRecord(&rec, err)
		m.noteFailure(k, rec.ErrorCode, rec.ErrorText)
		// Error for the server's faults (disk, bugs); what the origin gave is Warn.
		m.log.Log(failLevel(rec.ErrorCode), "packaging failed", append(fields, zap.String("outcome", "error"),
			zap.String("code", rec.ErrorCode), zap.String("reason", rec.ErrorText), errDetail(err))...)
	} else {
		m.log.Info("packaging done", append(fields, zap.String("outcome", "ready"))...)
		for _, n := range rec.Notes {
			m.log.Warn("packaged with a note", zap.String("video", k.Video), zap.String("type", k.Type), zap.String("note", n))
		}
	}
	// The record is saved outside the lock, so that a slow disk does not hold up the
	// API, and the API shows the outcome once it is saved. A Delete meanwhile waits for
	// d.done, closed after this, then removes the record.
	cached, listener := d.fleet.cached, m.settings.Listener
	m.mu.Unlock()
	switch {
	case m.fleet != nil && err != nil:
		m.fail(d, rec) // the failure is the bucket's record; nothing is kept locally
	case m.fleet != nil && !cached:
		// Published, but not kept here (the local copy could not be written).
	default:
		if err := m.store.SaveRecord(rec); err != nil {
			// The API shows the outcome all the same; a restart packages it again.
			m.log.Error("saving download record", zap.String("video", k.Video), zap.String("type", k.Type), zap.Error(err))
		}
	}
	if listener != nil {
		if err != nil {
			listener.Failed(rec, now().Sub(start))
		} else {
			listener.Ready(rec, now().Sub(start))
		}
	}
	m.mu.Lock()
	if m.downloads[k] != d {
		return
	}
	d.rec = rec
	d.prev = nil
	if err == nil {
		d.lastUsed = rec.LastUsed
		m.evict(d)
		// Before d.done is closed: who waits for the job sees the evictions done.
		m.mu.Unlock()
		m.flush()
		m.mu.Lock()
	}
}

// pack reads d's playlists, then fetches, remuxes and stores its file; on success it
// returns d's record as it is once ready (not applied to d yet).
func (m *Manager) pack(ctx context.Context, d *download, client *hls.Client, s Settings, opt hls.SelectOptions) (storage.Record, error) {
	k := d.rec.Key()
	typ, ok := ParseType(k.Type)
	if !ok { // a record of a type this version does not know
		return storage.Record{}, fmt.Errorf("unknown download type %q", k.Type)
	}
	src, err := m.resolveFor(ctx, k, d, client, d.rec.Origin, opt, s)
	src = keepLanguages(src, s.Languages)
	m.mu.Lock()
	d.src = src
	d.notInstant = d.notInstant || err == nil && !plannable(src, typ)
	d.endResolve()
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		d.src = nil
		m.mu.Unlock()
	}()
	if err != nil {
		return storage.Record{}, err
	}
	rs, err := renditions(src, typ)
	if err != nil {
		return storage.Record{}, err
	}
	// The origin has the video: a failure from here on is recorded, on-demand or not
	// (a segment's failure may be known before an earlier segment is demuxed).
	m.mu.Lock()
	d.media = true
	m.mu.Unlock()

	st, err := m.store.Stage(k)
	if err != nil {
		return storage.Record{}, storageError{"creating the temp file", err}
	}
	defer st.Discard() // no-op after Commit
	// Instant deliveries of the download read the file as it is written.
	lv := newLiveFile(st, sourceDigest(rs))
	d.live.Store(lv)
	defer d.live.CompareAndSwap(lv, nil)
	defer lv.end() // before the Discard
	out, err := packInto(ctx, client, src, typ, rs, s.Concurrency, s.MaxOutput, lv, func(done, total time.Duration) { m.progress(d, done, total) })
	lv.end() // before the Commit
	if err != nil {
		return storage.Record{}, err
	}

	m.mu.Lock()
	gone := m.downloads[k] != d || ctx.Err() != nil
	rec := d.rec
	m.mu.Unlock()
	if gone {
		return storage.Record{}, context.Canceled
	}
	rec.Status = storage.StatusReady
	rec.Notes = out.notes
	rec.Size, rec.ETag, rec.Ready = out.info.Size, out.etag, now().UTC().Truncate(time.Second)
	rec.LastUsed = now().UTC()
	if m.fleet != nil {
		// The bucket's copy is the download; the local one only a cache.
		if err := m.publish(ctx, d, st, rec); err != nil {
			return storage.Record{}, err
		}
	}
	// Outside the lock: a Delete that comes meanwhile waits for the job to end, then
	// removes what it committed.
	if err := st.Commit(); err != nil {
		if m.fleet != nil {
			m.log.Warn("fleet: keeping a local copy of a packaged file", zap.String("video", k.Video), zap.String("type", k.Type), zap.Error(err))
			return rec, nil
		}
		return storage.Record{}, storageError{"storing the packaged file", err}
	}
	if m.fleet != nil {
		m.mu.Lock()
		d.fleet.cached = true
		m.mu.Unlock()
	}
	return rec, nil
}

// packed is what packInto made: the file's layout, its ETag (fileETag) and the
// demuxers' notes.
type packed struct {
	info  mp4.Info
	etag  string
	notes []string
}

// packInto fetches and remuxes the renditions rs of src into f as a download of type
// typ, and finishes the file: the one code path of the Manager's jobs (pack) and of
// Package, so that both make the same bytes (and ETag) of the same source.
func packInto(ctx context.Context, client *hls.Client, src *hls.Source, typ Type, rs []*rendition, concurrency int, maxOutput int64, f mp4.File, progress func(done, total time.Duration)) (packed, error) {
	opts, chs, optNotes := fileOptions(src, typ)
	w := mp4.NewWriter(f, opts)
	c := *client
	c.Validators = hls.NewValidators()
	subs, err := readSubtitles(ctx, &c, src, typ, concurrency)
	if err != nil {
		return packed{}, err
	}
	tracks, notes, start, err := remux(ctx, &c, rs, concurrency, maxOutput, w, progress)
	if err == nil {
		tracks, err = addTextTracks(tracks, subs, chs, start, src.Duration, w.WriteSample)
	}
	var se storageError
	var le limitError
	switch { // the disk's or the limit's fault, not the segment's: say so plainly
	case errors.As(err, &se):
		return packed{}, se
	case errors.As(err, &le):
		return packed{}, le
	}
	if err != nil {
		return packed{}, err
	}
	info, err := w.Finish(tracks)
	if err != nil {
		return packed{}, diskError("writing the packaged file", err)
	}
	if maxOutput > 0 && info.Size > maxOutput {
		return packed{}, limitError{maxOutput}
	}
	etag, err := fileETag(io.NewSectionReader(f, 0, info.HeaderSize), rs, src, typ, c.Validators)
	if err != nil {
		return packed{}, diskError("reading the packaged file's header", err)
	}
	return packed{info, etag, append(optNotes, notes...)}, nil
}

// fileOptions are the options of the MP4 writer (and planner) for a download of type
// typ of src: its brand, the reserve for its header, its chapters (Nero chpl, from the
// playlist's chapters document; what cannot be read of them is a note, not a failure),
// which it returns too, for the chapter track.
func fileOptions(src *hls.Source, typ Type) (mp4.Options, []chapters.Chapter, []string) {
	opts := mp4.Options{ExpectedDuration: src.Duration}
	if typ.AudioOnly() {
		opts.Brand = mp4.BrandM4A
	}
	var notes []string
	var chs []chapters.Chapter
	switch {
	case src.ChaptersErr != nil:
		notes = append(notes, "chapters left out: "+src.ChaptersErr.Error())
	case src.Chapters != nil:
		lang := src.Media.Language
		if src.Audio != nil {
			lang = src.Audio.Media.Language
		}
		var err error
		if chs, err = chapters.Parse(src.Chapters, lang); err != nil {
			notes = append(notes, "chapters left out: "+err.Error())
			break
		}
		opts.MovieUdta = chapters.ChplBox(chs)
	}
	return opts, chs, notes
}

// progress moves d's percentage up to what done of total says, short of 100 which
// only a ready download shows.
func (m *Manager) progress(d *download, done, total time.Duration) {
	p := 99.0
	if total > 0 {
		p = min(99, 100*done.Seconds()/total.Seconds())
	}
	m.mu.Lock()
	d.percent = max(d.percent, p)
	m.mu.Unlock()
}

// storageError marks a failure of the local store (disk full, permissions). Its text
// names no local path (it reaches clients, as errorReasonText or an API error);
// errDetail gives the logs the whole error.
type storageError struct {
	op  string // what was being done: "writing the packaged file"
	err error
}

func (e storageError) Error() string {
	msg := pathless(e.err)
	switch {
	case errors.Is(e.err, syscall.ENOSPC), errors.Is(e.err, syscall.EDQUOT):
		msg = "the disk is full (" + msg + ")"
	case errors.Is(e.err, syscall.EROFS):
		msg = "the storage is read-only (" + msg + ")"
	case errors.Is(e.err, fs.ErrPermission):
		msg = "permission denied (" + msg + ")"
	}
	return "storage error " + e.op + ": " + msg
}
func (e storageError) Unwrap() error        { return e.err }
func (e storageError) Is(target error) bool { return target == ErrStorage }

// pathless is err's text without the local path that file system errors name
// ("write: no space left on device" for "write /var/lib/…/x.mp4: no space left on device").
func pathless(err error) string {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Op + ": " + pe.Err.Error()
	case errors.As(err, &le):
		return le.Op + ": " + le.Err.Error()
	}
	return err.Error()
}

// errDetail is the log field of a failure: a storage error's whole text, paths
// included (clients get it without them); nothing more for other errors.
func errDetail(err error) zap.Field {
	var se storageError
	if errors.As(err, &se) {
		return zap.NamedError("detail", se.err)
	}
	return zap.Skip()
}

// diskError marks err as the store's when it comes from the file system (the writer's
// other errors are about the media).
func diskError(op string, err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	var errno syscall.Errno
	if errors.As(err, &pe) || errors.As(err, &le) || errors.As(err, &errno) {
		return storageError{op, err}
	}
	return err
}

// limitError: the packaged file would exceed Settings.MaxOutput.
type limitError struct{ limit int64 }

func (e limitError) Error() string {
	return fmt.Sprintf("the packaged file would exceed the output size limit (limits output_size) of %d bytes", e.limit)
}

// failLevel is the log level of a failed run with errorReasonCode code: Error for the
// server's faults (storage_error, internal_error), Warn for unusable input (not_found,
// origin_error, unsupported_input, malformed_*, live, limit_exceeded, forbidden_host).
func failLevel(code string) zapcore.Level {
	switch code {
	case "storage_error", "internal_error":
		return zapcore.ErrorLevel
	}
	return zapcore.WarnLevel
}

// classify turns a run's error into the errorReasonCode and errorReasonText of the API.
func classify(err error) (code, text string) {
	var se storageError
	switch {
	case errors.As(err, &se):
		code = "storage_error"
	case errors.As(err, new(limitError)), errors.Is(err, hls.ErrLimit):
		code = "limit_exceeded"
	case errors.Is(err, hls.ErrForbiddenHost):
		code = "forbidden_host"
	case errors.Is(err, hls.ErrUnsupported), errors.Is(err, media.ErrUnsupportedCodec),
		errors.Is(err, errNoMedia):
		code = "unsupported_input"
	case errors.Is(err, hls.ErrMalformed):
		code = "malformed_playlist"
	case errors.Is(err, hls.ErrNotFound):
		code = "not_found"
	case errors.Is(err, hls.ErrLive):
		code = "live"
	case errors.As(err, new(*hls.OriginError)):
		code = "origin_error"
	case errors.Is(err, media.ErrMalformed), errors.Is(err, hls.ErrDecrypt):
		code = "malformed_segment"
	case errors.Is(err, errImplausible): // remux's timeline: a segment's media does not fit the playlist
		code = "malformed_segment"
	default:
		code = "internal_error"
	}
	return code, err.Error()
}
