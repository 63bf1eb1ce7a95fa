package packager

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/packager/hls"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
)

const (
	// refusalTTL is how long the failure of an on-demand creation answers the GETs of
	// the same download without asking the origin again: short, so that a video the
	// origin gets is soon found, long enough to spare it a stranger's loop.
	refusalTTL = 30 * time.Second
	// maxRefusals bounds the failures kept (about 200 bytes each): strangers may ask for
	// any number of ids.
	maxRefusals = 10_000
	// thrashWindow: a download packaged again within this of its eviction means the
	// files in use do not fit in max_storage, which the log says.
	thrashWindow = time.Hour
)

// ErrUnavailable matches the failure of an on-demand creation for another reason than
// a video the origin lacks or a live one (refused with hls.ErrNotFound or hls.ErrLive):
// the origin answered an error, an HTML page, something that is not a playable video.
var ErrUnavailable = errors.New("the origin could not provide the video")

// unavailable is an ErrUnavailable with its cause, for the log.
type unavailable struct{ err error }

func (e unavailable) Error() string        { return ErrUnavailable.Error() + ": " + e.err.Error() }
func (e unavailable) Unwrap() error        { return e.err }
func (e unavailable) Is(target error) bool { return target == ErrUnavailable }

// refusal is a recent failure of an on-demand creation.
type refusal struct {
	err   error
	until time.Time
}

// Create creates the download k from the playlist at origin, or returns its state if it
// exists (a failed or evicted one starts again).
//
// The download is in the API, in progress, from this call on. When a job slot is free
// its job starts at once and Create waits for it to read the playlists, until ctx is
// done or Settings.CreateWait has passed: a video the origin does not have
// (hls.ErrNotFound), a live playlist (hls.ErrLive) or a record that cannot be saved (an
// ErrStorage) is refused then, and nothing is created; later, they end the download in
// error (errorReasonCode not_found, live). A download that must wait for a slot is
// refused the same way when its playlists say so within Settings.CreateWait (probe),
// else queued by its key (its job reads them again when it starts), unless
// Settings.MaxQueue downloads wait already: then Create answers ErrQueueFull. An
// on-demand one is queued at once (its GET answers within its own wait).
func (m *Manager) Create(ctx context.Context, k storage.Key, origin string) (State, error) {
	return m.create(ctx, k, origin, false)
}

// CreateOnDemand is Create for a GET of the file with on_demand, which anyone may send
// for any id. Such a download has no record on disk until it is ready, or fails after
// its playlists were read: if it fails before (the origin refuses, answers an error or an
// HTML page, has no such video), it is forgotten, and its failure answers the GETs of the
// next 30 s without asking the origin again (hls.ErrNotFound, hls.ErrLive, or an
// ErrUnavailable). A POST makes it an ordinary download.
func (m *Manager) CreateOnDemand(ctx context.Context, k storage.Key, origin string) (State, error) {
	return m.create(ctx, k, origin, true)
}

func (m *Manager) create(ctx context.Context, k storage.Key, origin string, anon bool) (State, error) {
	if m.fleet != nil {
		return m.fleetCreate(ctx, k, origin, anon)
	}
	m.mu.Lock()
	if err := m.refusedFor(k, anon); err != nil {
		m.mu.Unlock()
		return State{}, err
	}
	d := m.downloads[k]
	if d != nil && !anon && d.anon {
		// The API's from now on: recorded whatever comes (its record is written when
		// its job ends; till then a restart forgets it, as any on-demand download).
		d.anon = false
	}
	if d == nil || d.rec.Status == storage.StatusError {
		if m.sched.waiting() >= m.settings.MaxQueue {
			m.mu.Unlock()
			return State{}, ErrQueueFull
		}
		d = m.newDownload(k, origin, d)
		d.anon = anon
		switch {
		case m.sched.idle(m.settings.MaxJobs) && m.ctx.Err() == nil:
			m.enqueue(d) // started at once: its job decides
		case !anon:
			if err := m.probe(ctx, k, d, origin); err != nil {
				m.mu.Unlock()
				return State{}, err
			}
		default:
			if err := m.queueNew(k, d); err != nil {
				m.mu.Unlock()
				return State{}, err
			}
		}
	}
	m.mu.Unlock()
	return m.decision(ctx, d)
}

// decision waits until d's creation is decided (see Create), or ctx is done, and returns
// what Create answers. Call without m.mu.
func (m *Manager) decision(ctx context.Context, d *download) (State, error) {
	m.mu.Lock()
	decided := d.decided
	m.mu.Unlock()
	if decided != nil {
		select {
		case <-decided:
		case <-ctx.Done():
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if d.refused != nil {
		return State{}, d.refused
	}
	return d.state(), nil
}

// newDownload puts a new download k in place of prev (nil, failed or evicted). Call
// with m.mu held.
func (m *Manager) newDownload(k storage.Key, origin string, prev *download) *download {
	d := &download{
		rec: storage.Record{
			Video: k.Video, Type: k.Type, Status: storage.StatusInProgress,
			Origin: origin, Created: now().UTC(),
		},
		done:    make(chan struct{}),
		decided: make(chan struct{}),
		prev:    prev,
	}
	if prev != nil {
		// Packaged again after an error or an eviction: it keeps its place in lists.
		d.rec.Created = prev.rec.Created
	}
	if prev != nil && evicted(prev.rec) {
		fields := []zap.Field{zap.String("video", k.Video), zap.String("type", k.Type)}
		if ago := now().Sub(prev.evictedAt); !prev.evictedAt.IsZero() && ago < thrashWindow {
			m.thrash++
			m.log.Warn("max_storage thrash: a file evicted to keep max_storage is packaged again; the files in use do not fit in max_storage",
				append(fields, zap.Duration("evicted_ago", ago), zap.Int("thrash_count", m.thrash))...)
		} else {
			m.log.Info("packaging again a file evicted to keep max_storage", fields...)
		}
	}
	m.put(k, d)
	return d
}

// queueNew saves the record of d, which waits for a slot, and queues it: nothing will
// be known of its playlists before its job starts, so it exists for good now. It
// returns the storage error that refused d. Call with m.mu held; it is released while
// the record is written.
func (m *Manager) queueNew(k storage.Key, d *download) error {
	if d.anon { // no record before it has media
		m.decide(d)
		m.enqueue(d)
		return nil
	}
	d.committed = true
	m.sched.creating++ // counted against MaxQueue while its record is written
	rec := d.rec
	m.mu.Unlock()
	m.flush() // the eviction of the download d replaces writes its record first
	err := m.store.SaveRecord(rec)
	m.mu.Lock()
	m.sched.creating--
	if m.downloads[k] != d { // deleted meanwhile: the Delete waits for d.done
		m.decide(d)
		close(d.done)
		return nil
	}
	if err != nil {
		m.log.Error("saving download record", zap.String("video", k.Video), zap.String("type", k.Type), zap.Error(err))
		m.refuse(k, d, storageError{"saving the download record", err})
		close(d.done)
		return d.refused
	}
	m.decide(d)
	m.enqueue(d)
	return nil
}

// probe reads the playlists of d, which must wait for a slot, for at most
// Settings.CreateWait, so that the API may still answer that the origin has no such
// video (hls.ErrNotFound) or a live one (hls.ErrLive): then d is refused and that error
// returned. Otherwise (the playlists are fine, fail otherwise or take longer) d is
// queued, by its key: its job reads them again when it starts. Call with m.mu held; it
// is released while the origin answers.
func (m *Manager) probe(ctx context.Context, k storage.Key, d *download, origin string) error {
	m.sched.creating++ // counted against MaxQueue meanwhile
	client, s, opt := m.client, m.settings, m.selectOptions(k)
	m.mu.Unlock()
	client = m.jobClient(client, k, nil)
	src, err := resolve(ctx, client, origin, opt, s.CreateWait)
	m.mu.Lock()
	m.sched.creating--
	if typ, ok := ParseType(k.Type); ok && err == nil && !plannable(src, typ) {
		d.notInstant = true // GETs while it waits for a job need not read the playlists again
	}
	switch {
	case m.downloads[k] != d: // deleted meanwhile: the Delete waits for d.done
		m.decide(d)
		close(d.done)
		return nil
	case errors.Is(err, hls.ErrNotFound), errors.Is(err, hls.ErrLive):
		m.refuse(k, d, err)
		close(d.done)
		return err
	}
	return m.queueNew(k, d)
}

// errRefused ends the job of a download whose creation was refused.
var errRefused = errors.New("creation refused")

// resolveFor reads d's playlists for its job (under Settings.ResolveTimeout). When d's
// creation waits for that (Create), it is decided here: refused, or its record saved
// (at once when the playlists are fine, at CreateWait when they take longer).
func (m *Manager) resolveFor(ctx context.Context, k storage.Key, d *download, client *hls.Client, origin string, opt hls.SelectOptions, s Settings) (*hls.Source, error) {
	m.mu.Lock()
	deciding := d.decided != nil && !d.isDecided
	m.mu.Unlock()
	if !deciding {
		return resolve(ctx, client, origin, opt, s.ResolveTimeout)
	}
	res := make(chan resolution, 1)
	go func() {
		src, err := resolve(ctx, client, origin, opt, s.ResolveTimeout)
		res <- resolution{src, err}
	}()
	timer := time.NewTimer(s.CreateWait)
	defer timer.Stop()
	var r resolution
	select {
	case r = <-res:
	case <-timer.C:
		// Create answers in progress now: whatever the origin says, d is recorded.
		m.commit(k, d)
		m.mu.Lock()
		m.decide(d)
		m.mu.Unlock()
		r = <-res
		return r.src, r.err
	}
	switch {
	case r.err != nil && ctx.Err() != nil: // stopping (or deleted): the next start resumes it
		m.commit(k, d)
	case errors.Is(r.err, hls.ErrNotFound), errors.Is(r.err, hls.ErrLive):
		m.mu.Lock()
		if m.downloads[k] == d {
			m.refuse(k, d, r.err)
		}
		m.mu.Unlock()
		return nil, errRefused
	case r.err == nil:
		err := m.commit(k, d)
		m.mu.Lock()
		defer m.mu.Unlock()
		if err != nil {
			if m.downloads[k] == d {
				m.refuse(k, d, storageError{"saving the download record", err})
			}
			return nil, errRefused
		}
		m.decide(d)
	}
	// Another failure: the job records it, then Create's callers see it.
	return r.src, r.err
}

// resolution is the outcome of reading a download's playlists.
type resolution struct {
	src *hls.Source
	err error
}

// commit saves the record of d, being created, as it is (in progress), so that it
// exists for good. It runs in d's job, which saves d's records in order; a failure is
// logged and returned.
func (m *Manager) commit(k storage.Key, d *download) error {
	m.mu.Lock()
	if m.downloads[k] != d || d.committed || d.anon { // an on-demand one has no record before its media
		m.mu.Unlock()
		return nil
	}
	rec := d.rec
	m.mu.Unlock()
	// Outside the lock, as every disk write: a slow disk holds up no other download.
	// A Delete meanwhile waits for d.done, closed when the job ends. The eviction of the
	// download d replaces writes its record (and removes its file) first.
	m.flush()
	err := m.store.SaveRecord(rec)
	if err != nil {
		m.log.Error("saving download record", zap.String("video", k.Video), zap.String("type", k.Type), zap.Error(err))
		return err
	}
	m.mu.Lock()
	d.committed = true
	m.mu.Unlock()
	return nil
}

// refuse takes d out, putting back the download it replaced, with err as the answer of
// Create's callers. Call with m.mu held.
func (m *Manager) refuse(k storage.Key, d *download, err error) {
	if d.anon && !errors.Is(err, ErrStorage) {
		m.remember(k, err)
	}
	d.refused = err
	if d.prev != nil {
		m.put(k, d.prev)
	} else {
		m.remove(k)
	}
	d.prev = nil
	m.decide(d)
	if m.fleet != nil && d.fleet.hold != nil {
		// Nothing is created: the object it was created with goes (after the job
		// stopped renewing it).
		m.later = append(m.later, func() {
			if m.unhold(d) == nil {
				return
			}
			if err := m.removeObjects(k); err != nil {
				m.log.Warn("fleet: removing a refused download", zap.String("video", k.Video), zap.String("type", k.Type), zap.Error(err))
			}
		})
	}
}

// decide lets Create's callers answer. Call with m.mu held.
func (m *Manager) decide(d *download) {
	if !d.anon { // an on-demand one may still be forgotten, and prev be back
		d.prev = nil
	}
	if d.decided != nil && !d.isDecided {
		d.isDecided = true
		close(d.decided)
	}
}

// forget takes out d, an on-demand download that failed with err before its media came:
// it leaves nothing on disk, and its failure answers the GETs of the next refusalTTL.
// Call with m.mu held.
func (m *Manager) forget(k storage.Key, d *download, err error) {
	if !errors.Is(err, hls.ErrNotFound) && !errors.Is(err, hls.ErrLive) {
		code, text := classify(err)
		err = unavailable{fmt.Errorf("%s: %s", code, text)}
	}
	if m.downloads[k] == d {
		m.refuse(k, d, err)
	}
}

// remember keeps err as the answer to the on-demand creations of k for refusalTTL.
// Call with m.mu held.
func (m *Manager) remember(k storage.Key, err error) {
	if len(m.refusals) >= maxRefusals {
		t := now()
		for rk, r := range m.refusals {
			if t.After(r.until) {
				delete(m.refusals, rk)
			}
		}
		for rk := range m.refusals { // still full: any goes (map order is random)
			if len(m.refusals) < maxRefusals {
				break
			}
			delete(m.refusals, rk)
		}
	}
	m.refusals[k] = refusal{err: err, until: now().Add(refusalTTL)}
}

// refused returns the recent failure of an on-demand creation of k, if any. Call with
// m.mu held.
func (m *Manager) refused(k storage.Key) error {
	r, ok := m.refusals[k]
	if !ok {
		return nil
	}
	if now().After(r.until) {
		delete(m.refusals, k)
		return nil
	}
	return r.err
}

// refusedFor is the recent refusal that answers an on-demand creation of k (anon); the
// API's creation asks again, so it drops the refusal. Call with m.mu held.
func (m *Manager) refusedFor(k storage.Key, anon bool) error {
	err := m.refused(k)
	if err != nil && !anon {
		delete(m.refusals, k)
		return nil
	}
	return err
}

// Refused returns the recent failure of an on-demand creation of k (see
// CreateOnDemand), nil if there is none: a GET answers it without creating anything.
func (m *Manager) Refused(k storage.Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.refused(k)
}

// resolve reads the playlists at origin within timeout. Reaching it is the origin's
// fault (a playlist that dribbles, retries that go on), so it ends as an
// *hls.OriginError naming the playlist, not as a bare "context deadline exceeded".
func resolve(ctx context.Context, client *hls.Client, origin string, opt hls.SelectOptions, timeout time.Duration) (*hls.Source, error) {
	name := "the origin's playlist"
	if u, err := url.Parse(origin); err == nil {
		name = hls.RedactURL(u)
	}
	cause := &hls.OriginError{URL: name, Err: fmt.Errorf("the origin did not answer its playlists within %v", timeout)}
	rctx, cancel := context.WithTimeoutCause(ctx, timeout, cause)
	defer cancel()
	return client.Resolve(rctx, origin, opt)
}
