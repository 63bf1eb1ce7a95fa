package packager

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/packager/lease"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage/bucket"
)

// The leases this instance holds: taken when it creates or takes over a download,
// renewed (with the progress) until its job ends, given up with the outcome.

// claim takes k for this instance: a new object when seen is nil, else a takeover of
// the object seen with etag (a lease that expired, a failed download packaged again).
// It returns the record the object now holds. bucket.ErrConflict: another instance was
// first; read again and obey.
func (m *Manager) claim(ctx context.Context, k storage.Key, origin string, seen *lease.Doc, etag string) (*lease.Claim, error) {
	rec := storage.Record{Video: k.Video, Type: k.Type, Status: storage.StatusInProgress, Origin: origin, Created: now().UTC()}
	if seen != nil {
		rec.Created = seen.Record.Created // it keeps its place in lists
		if origin == "" {
			rec.Origin = seen.Record.Origin
		}
	}
	ctx, cancel := context.WithTimeout(ctx, bucketTimeout)
	defer cancel()
	f := m.fleet.conf()
	var c *lease.Claim
	var err error
	if seen == nil {
		c, err = lease.Acquire(ctx, f.Bucket, docKey(k), lease.Doc{Record: rec}, f.Node, f.Lease)
	} else {
		c, err = lease.TakeOver(ctx, f.Bucket, docKey(k), *seen, etag, lease.Doc{Record: rec}, f.Node, f.Lease)
	}
	if err != nil {
		return nil, err
	}
	// The sweep finds held downloads by their marker; one left behind costs a read.
	if _, err := f.Bucket.Create(ctx, markerKey(k), []byte(f.Node)); err != nil && !errors.Is(err, bucket.ErrConflict) {
		m.log.Warn("fleet: writing the lease marker", zap.String("video", k.Video), zap.String("type", k.Type), zap.Error(err))
	}
	m.fleet.watch.Forget(docKey(k))
	fields := []zap.Field{zap.String("video", k.Video), zap.String("type", k.Type), zap.Int64("generation", c.Generation())}
	if seen != nil && seen.Lease.Held() {
		m.log.Info("fleet: took over a download whose lease expired", append(fields, zap.String("holder", seen.Lease.Holder))...)
	}
	return c, nil
}

// skipRenewal is a test hook: renewals of the instances for which it returns true are not
// sent, as if they were lost on the way.
var skipRenewal func(node string) bool

// hold makes d the download this instance packages under c, and starts renewing c.
// Call with m.mu held.
func (m *Manager) hold(d *download, c *lease.Claim) {
	h := &holding{claim: c, stop: make(chan struct{}), ended: make(chan struct{})}
	d.rec = c.Doc().Record
	d.committed = true // the object is its record
	d.fleet = mirror{hold: h, read: now()}
	m.sched.jobs.Add(1)
	go m.renew(d, h)
}

// renew renews h every third of its lease, and publishes d's progress as it changes, at
// most every Staleness, until the job ends or the lease is lost. It wakes at the lease's
// deadline at the latest: a holder that could not renew stops then, not a tick later.
func (m *Manager) renew(d *download, h *holding) {
	defer m.sched.jobs.Done()
	defer close(h.ended)
	h.mu.Lock()
	dur := h.claim.Doc().Lease.Duration
	h.mu.Unlock()
	every := min(dur/3, m.fleet.conf().Staleness)
	timer := time.NewTimer(every)
	defer timer.Stop()
	last, published := now(), 0.0
	for {
		select {
		case <-h.stop:
			return
		case <-m.ctx.Done():
			return
		case <-timer.C:
		}
		h.mu.Lock()
		left := h.claim.Deadline().Sub(now())
		h.mu.Unlock()
		if left <= 0 {
			m.lose(d, h, fmt.Errorf("%w: not renewed for the lease's duration less its margin", lease.ErrLost))
			return
		}
		timer.Reset(min(every, left))
		m.mu.Lock()
		p := d.percent
		m.mu.Unlock()
		if p == published && now().Sub(last) < dur/3 || skipRenewal != nil && skipRenewal(m.fleet.conf().Node) {
			continue
		}
		ctx, cancel := context.WithTimeout(m.ctx, min(dur/3, left))
		h.mu.Lock()
		err := h.claim.Renew(ctx, func(doc *lease.Doc) { doc.Percent = p })
		h.mu.Unlock()
		cancel()
		switch {
		case err == nil:
			last, published = now(), p
		case errors.Is(err, lease.ErrLost):
			m.lose(d, h, err)
			return
		default: // the bucket did not answer: again at the next wake, while the lease lasts
			m.log.Debug("fleet: renewing a lease", zap.String("video", d.rec.Video), zap.String("type", d.rec.Type), zap.Error(err))
		}
	}
}

// lose stops d's job: its lease went to another instance, d was deleted, or it could not
// be renewed in time. What the bucket says of d is read again at its next use.
func (m *Manager) lose(d *download, h *holding, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d.fleet.hold != h {
		return
	}
	m.log.Warn("fleet: lease lost, packaging stops here", zap.String("video", d.rec.Video), zap.String("type", d.rec.Type), zap.Error(err))
	d.fleet.hold, d.fleet.read = nil, time.Time{}
	m.unqueue(d)
	if d.cancel != nil {
		d.cancel()
	}
}

// unhold stops renewing d's lease and returns it, for the job's last write; nil when d
// holds none (lost meanwhile). Call without m.mu.
func (m *Manager) unhold(d *download) *holding {
	m.mu.Lock()
	h := d.fleet.hold
	d.fleet.hold = nil
	m.mu.Unlock()
	if h != nil {
		close(h.stop)
		<-h.ended
	}
	return h
}

// publish uploads the packaged file in st under the lease's generation and makes it
// d's file by writing rec into d's object, which gives up the lease. A run that lost its
// lease uploads, but cannot publish: its upload is removed.
func (m *Manager) publish(ctx context.Context, d *download, st storage.Staging, rec storage.Record) error {
	k := rec.Key()
	m.mu.Lock()
	h := d.fleet.hold
	m.mu.Unlock()
	if h == nil {
		return lease.ErrLost
	}
	b := m.fleet.conf().Bucket
	h.mu.Lock() // the renewals go on meanwhile
	key := fileKey(k, h.claim.Generation())
	h.mu.Unlock()
	var fileETag string
	var err error
	for try := range 3 { // the file is there whole: a failed upload is sent again
		if try > 0 {
			select {
			case <-time.After(time.Duration(try) * time.Second):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if fileETag, err = b.Upload(ctx, key, st, rec.Size); err == nil {
			break
		}
	}
	if err != nil {
		return unreachable("uploading the packaged file", err)
	}
	if h = m.unhold(d); h == nil {
		m.discard(key)
		return lease.ErrLost
	}
	err = m.giveUp(ctx, h, func(doc *lease.Doc) {
		doc.Record, doc.Percent, doc.File, doc.FileETag = rec, 100, key, fileETag
	})
	if err != nil {
		m.discard(key)
		return err
	}
	m.mu.Lock()
	d.fleet.file, d.fleet.fileETag = key, fileETag
	m.mu.Unlock()
	// Files of earlier generations (a run that lost its lease after uploading, a file
	// packaged before a failure) are orphans now.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bucketTimeout)
	defer cancel()
	keys, err := b.Keys(ctx, filePrefix(k))
	for _, old := range keys {
		if old != key {
			err = errors.Join(err, b.Delete(ctx, old))
		}
	}
	if err != nil {
		m.log.Warn("fleet: removing files of earlier runs", zap.String("video", k.Video), zap.String("type", k.Type), zap.Error(err))
	}
	return nil
}

// fail writes d's failed record into its object, giving up its lease.
func (m *Manager) fail(d *download, rec storage.Record) {
	h := m.unhold(d)
	if h == nil {
		return
	}
	err := m.giveUp(m.ctx, h, func(doc *lease.Doc) { doc.Record, doc.Percent, doc.File, doc.FileETag = rec, 0, "", "" })
	if err != nil {
		m.log.Warn("fleet: recording a failure", zap.String("video", rec.Video), zap.String("type", rec.Type), zap.Error(err))
	}
}

// giveUp writes the last update of a lease, trying again while the bucket does not
// answer and the lease lasts, and removes the download's marker.
func (m *Manager) giveUp(ctx context.Context, h *holding, update func(*lease.Doc)) error {
	var err error
	for try := range 4 {
		if try > 0 {
			select {
			case <-time.After(time.Duration(try) * time.Second):
			case <-m.ctx.Done():
				return err
			}
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bucketTimeout)
		err = h.claim.Release(rctx, update)
		cancel()
		if err == nil || errors.Is(err, lease.ErrLost) {
			break
		}
	}
	if err != nil {
		return err
	}
	k := h.claim.Doc().Record.Key()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bucketTimeout)
	defer cancel()
	if err := m.fleet.conf().Bucket.Delete(ctx, markerKey(k)); err != nil {
		m.log.Debug("fleet: removing a lease marker", zap.String("video", k.Video), zap.String("type", k.Type), zap.Error(err))
	}
	return nil
}

// discard removes an uploaded file that was not published.
func (m *Manager) discard(key string) {
	ctx, cancel := context.WithTimeout(context.Background(), bucketTimeout)
	defer cancel()
	if err := m.fleet.conf().Bucket.Delete(ctx, key); err != nil {
		m.log.Warn("fleet: removing a file that was not published", zap.String("key", key), zap.Error(err))
	}
}
