package packager

import (
	"context"
	"errors"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/packager/lease"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage/bucket"
)

// fleetCreate is create for an instance of a fleet: the download's object decides. None
// yet: this instance creates it, holding its lease, and packages it. In progress on
// another instance: its state is answered (and its lease watched: one not renewed for
// its duration is taken over). Failed: it is taken over to be packaged again. Ready: it
// is answered.
//
// The job of a new download starts at once when a slot is free, and Create waits for it
// to read the playlists (CreateWait) as without a fleet; a download that must wait for a
// slot is answered in progress at once (its object exists already: the fleet sees it).
func (m *Manager) fleetCreate(ctx context.Context, k storage.Key, origin string, anon bool) (State, error) {
	m.mu.Lock()
	if err := m.refusedFor(k, anon); err != nil {
		m.mu.Unlock()
		return State{}, err
	}
	if d := m.downloads[k]; d != nil && d.fleet.hold != nil {
		if !anon {
			d.anon = false
		}
		st := d.state()
		m.mu.Unlock()
		return st, nil // this instance packages it
	}
	m.mu.Unlock()
	for range 4 { // each turn lost a race to another instance, which moved the object on
		doc, etag, err := m.fleet.read(ctx, k)
		var seen *lease.Doc
		switch {
		case errors.Is(err, bucket.ErrNotExist):
		case err != nil:
			return State{}, unreachable("reading the download", err)
		default:
			m.mu.Lock()
			d := m.sync(k, doc, etag)
			st := d.state()
			m.mu.Unlock()
			m.flush()
			switch {
			case doc.Record.Status == storage.StatusReady:
				return st, nil
			case doc.Record.Status == storage.StatusInProgress && doc.Lease.Held() &&
				!m.fleet.watch.Observe(docKey(k), etag, max(doc.Lease.Duration, time.Second)):
				return st, nil
			}
			seen = &doc // failed, or its holder stopped: packaged again here
		}
		st, err := m.claimAndQueue(ctx, k, origin, anon, seen, etag)
		if errors.Is(err, bucket.ErrConflict) || errors.Is(err, bucket.ErrNotExist) {
			continue
		}
		return st, err
	}
	return State{}, unreachable("creating the download", errors.New("other instances kept changing it"))
}

// claimAndQueue claims k (see claim) and queues its job; Create waits for the job to
// read the playlists when it starts at once.
func (m *Manager) claimAndQueue(ctx context.Context, k storage.Key, origin string, anon bool, seen *lease.Doc, etag string) (State, error) {
	m.mu.Lock()
	full := m.sched.waiting() >= m.settings.MaxQueue
	m.mu.Unlock()
	if full {
		return State{}, ErrQueueFull
	}
	c, err := m.claim(ctx, k, origin, seen, etag)
	if err != nil {
		if errors.Is(err, bucket.ErrConflict) || errors.Is(err, bucket.ErrNotExist) {
			return State{}, err
		}
		return State{}, unreachable("creating the download", err)
	}
	m.mu.Lock()
	d := m.newDownload(k, c.Doc().Record.Origin, m.downloads[k])
	d.anon = anon
	m.hold(d, c)
	if !m.sched.idle(m.settings.MaxJobs) || m.ctx.Err() != nil {
		m.decide(d) // waiting for a slot: nothing more to wait for here
	}
	m.enqueue(d)
	m.mu.Unlock()
	return m.decision(ctx, d)
}
