package packager

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/packager/lease"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage/bucket"
)

// What an instance of a fleet shows of a download comes from the download's object,
// read again once it is older than Staleness (or at once when it packages it itself).

// refresh brings k's download up to date with its object when what is known of it is
// older than Staleness; a download whose object is gone is forgotten here too. While the
// bucket does not answer, a ready download with a local copy is shown as it was known,
// and delivered: availability over freshness.
func (m *Manager) refresh(ctx context.Context, k storage.Key) error {
	if m.fleet == nil {
		return nil
	}
	stale := m.fleet.conf().Staleness
	m.mu.Lock()
	d := m.downloads[k]
	fresh := d != nil && (d.fleet.hold != nil || now().Sub(d.fleet.read) < stale)
	if seen, ok := m.fleet.absent[k]; d == nil && ok && now().Sub(seen) < stale {
		fresh = true // known absent
	}
	m.mu.Unlock()
	if fresh {
		return nil
	}
	doc, etag, err := m.fleet.read(ctx, k)
	switch {
	case errors.Is(err, bucket.ErrNotExist):
		m.mu.Lock()
		if d := m.downloads[k]; d != nil && d.fleet.hold == nil {
			m.drop(k, d)
		}
		if m.downloads[k] == nil {
			m.fleet.noteAbsent(k, stale)
		}
		m.mu.Unlock()
		m.flush()
		return nil
	case err != nil:
		m.mu.Lock()
		local := d != nil && m.downloads[k] == d && m.kept(d)
		m.mu.Unlock()
		if local {
			return nil
		}
		return unreachable("reading the download", err)
	}
	m.mu.Lock()
	d = m.sync(k, doc, etag)
	expired := d.fleet.hold == nil && doc.Record.Status == storage.StatusInProgress &&
		m.fleet.watch.Observe(docKey(k), etag, max(doc.Lease.Duration, time.Second))
	m.mu.Unlock()
	m.flush()
	if expired {
		m.sched.jobs.Add(1)
		go func() {
			defer m.sched.jobs.Done()
			m.takeOver(k, doc, etag)
		}()
	}
	return nil
}

// sync makes k's download what its object says, unless this instance packages it (then
// its own state is newer). Call with m.mu held, and flush after releasing it.
func (m *Manager) sync(k storage.Key, doc lease.Doc, etag string) *download {
	d := m.downloads[k]
	if d == nil {
		d = &download{}
		m.put(k, d)
	}
	if d.fleet.hold != nil {
		return d
	}
	if d.fleet.cached && (doc.Record.Status != storage.StatusReady || doc.Record.ETag != d.rec.ETag) {
		m.uncache(k, d) // packaged again, or deleted and created again: another file
	}
	d.rec, d.percent = doc.Record, doc.Percent
	d.fleet.etag, d.fleet.read = etag, now()
	d.fleet.file, d.fleet.fileETag = doc.File, doc.FileETag
	if d.rec.Status == storage.StatusReady && d.lastUsed.IsZero() {
		d.lastUsed = d.rec.Ready
	}
	if doc.Record.Status != storage.StatusInProgress {
		m.fleet.watch.Forget(docKey(k))
	}
	return d
}

// drop forgets d, whose object is gone (deleted on another instance), with its local
// copy. Call with m.mu held, and flush after releasing it.
func (m *Manager) drop(k storage.Key, d *download) {
	if d.fleet.cached {
		m.uncache(k, d)
	}
	m.remove(k)
	m.fleet.watch.Forget(docKey(k))
}

// uncache queues the removal of d's local copy. Call with m.mu held, and flush after
// releasing it.
func (m *Manager) uncache(k storage.Key, d *download) {
	d.fleet.cached = false
	m.later = append(m.later, func() {
		if err := m.store.Delete(k); err != nil {
			m.log.Warn("fleet: removing a local copy", zap.String("video", k.Video), zap.String("type", k.Type), zap.Error(err))
		}
	})
}

// takeOver takes k over from the instance whose lease on it expired (its object was
// seen with etag for the lease's duration), and packages it here.
func (m *Manager) takeOver(k storage.Key, doc lease.Doc, etag string) {
	m.mu.Lock()
	if d := m.downloads[k]; d != nil && (d.fleet.hold != nil || d.fleet.etag != etag) {
		m.mu.Unlock()
		return // taken already, or it moved on
	}
	full := m.sched.waiting() >= m.settings.MaxQueue
	m.mu.Unlock()
	if full {
		return // the sweep comes back to it
	}
	c, err := m.claim(m.ctx, k, "", &doc, etag)
	if err != nil {
		if !errors.Is(err, bucket.ErrConflict) && !errors.Is(err, bucket.ErrNotExist) {
			m.log.Warn("fleet: taking over a download", zap.String("video", k.Video), zap.String("type", k.Type), zap.Error(err))
		}
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.newDownload(k, c.Doc().Record.Origin, m.downloads[k])
	m.hold(d, c)
	m.decide(d)
	m.enqueue(d)
}

// sweep takes over, every lease duration, the downloads whose holder stopped renewing,
// whether or not anyone asks for them: it looks at the held ones (by their markers).
func (m *Manager) sweep() {
	defer m.sched.jobs.Done()
	m.check()
	t := time.NewTicker(m.fleet.conf().Lease)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		}
		if !m.fleet.checked.Load() {
			continue
		}
		ctx, cancel := context.WithTimeout(m.ctx, m.fleet.conf().Lease)
		keys, err := m.fleet.conf().Bucket.Keys(ctx, "leases/")
		if err != nil {
			m.log.Debug("fleet: listing held downloads", zap.Error(err))
		}
		for _, key := range keys {
			video, typ, ok := strings.Cut(strings.TrimPrefix(key, "leases/"), "/")
			if !ok || !validKey(video, typ) {
				continue
			}
			k := storage.Key{Video: video, Type: typ}
			if err := m.sweepOne(ctx, k); err != nil {
				m.log.Debug("fleet: sweeping a download", zap.String("video", video), zap.String("type", typ), zap.Error(err))
			}
		}
		cancel()
	}
}

// check checks, until it has, that the bucket honours conditional writes (the caller
// could not at start): every few seconds while it does not answer. A bucket that answers
// but does not honour them stays unchecked (the fleet would package twice): the log
// says so, and the API answers 503.
func (m *Manager) check() {
	for wait := time.Second; !m.fleet.checked.Load(); wait = min(2*wait, 30*time.Second) {
		ctx, cancel := context.WithTimeout(m.ctx, bucketTimeout)
		err := m.fleet.conf().Bucket.CheckConditional(ctx, "probes/"+m.fleet.conf().Node)
		cancel()
		switch {
		case err == nil:
			m.fleet.checked.Store(true)
			m.log.Info("fleet: the bucket answers and honours conditional writes")
			return
		case errors.Is(err, bucket.ErrNoConditionalWrites):
			m.log.Error("fleet: the bucket does not honour conditional writes; this instance answers 503 until it is replaced", zap.Error(err))
			return
		}
		m.log.Debug("fleet: the bucket does not answer yet", zap.Error(err))
		select {
		case <-m.ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// sweepOne looks at one held download: its marker goes once it is no longer in
// progress; else the look counts towards its lease's expiry (refresh).
func (m *Manager) sweepOne(ctx context.Context, k storage.Key) error {
	m.mu.Lock()
	if d := m.downloads[k]; d != nil {
		d.fleet.read = time.Time{} // read it now
	}
	m.mu.Unlock()
	if err := m.refresh(ctx, k); err != nil {
		return err
	}
	m.mu.Lock()
	d := m.downloads[k]
	done := d == nil || d.rec.Status != storage.StatusInProgress
	m.mu.Unlock()
	if done {
		return m.fleet.conf().Bucket.Delete(ctx, markerKey(k))
	}
	return nil
}

// fleetWait is Wait in a fleet.
func (m *Manager) fleetWait(ctx context.Context, k storage.Key) (State, bool) {
	for {
		st, ok, err := m.State(ctx, k)
		if err != nil || !ok || st.Status != storage.StatusInProgress {
			return st, ok
		}
		m.mu.Lock()
		var done chan struct{} // nil (never ready) unless this instance packages it
		if d := m.downloads[k]; d != nil && d.fleet.hold != nil {
			done = d.done
		}
		m.mu.Unlock()
		t := time.NewTimer(m.fleet.conf().Staleness)
		select {
		case <-done:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return st, true
		}
		t.Stop()
	}
}

// maxAbsent bounds the keys remembered absent: strangers may ask for any number of ids.
const maxAbsent = 10_000

// noteAbsent remembers that k has no object. Call with Manager.mu held.
func (f *fleet) noteAbsent(k storage.Key, stale time.Duration) {
	t := now()
	if len(f.absent) >= maxAbsent {
		for ak, seen := range f.absent {
			if t.Sub(seen) >= stale {
				delete(f.absent, ak)
			}
		}
		if len(f.absent) >= maxAbsent {
			clear(f.absent) // all fresh: forgetting costs a read each, nothing more
		}
	}
	if f.absent == nil {
		f.absent = make(map[storage.Key]time.Time)
	}
	f.absent[k] = t
}
