package packager

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
)

// Delivery's side of the registry: a packaged file is opened pinned, so that the evictor
// leaves it alone until the response is sent, and each open is a use for its LRU order.

// Open opens k's packaged file for delivery, or says why it cannot. The file is pinned
// (never evicted) until it is closed, and the open counts as a use for the LRU order.
// In a fleet, a file without a local copy is read from the bucket (within ctx). A
// download in progress whose source is fMP4 is opened as the file it will be (instant
// delivery, docs/instant.md): State's Size and ETag are then the planned file's.
func (m *Manager) Open(ctx context.Context, k storage.Key) (storage.File, State, error) {
	return m.OpenWithin(ctx, k, 0)
}

// OpenWithin is Open waiting at most plan (0: as long as ctx allows) for the plan of a
// download in progress; past it the download is answered in progress. ctx bounds the
// reads of the file opened.
func (m *Manager) OpenWithin(ctx context.Context, k storage.Key, plan time.Duration) (storage.File, State, error) {
	if err := m.refresh(ctx, k); err != nil {
		return nil, State{}, err
	}
	m.mu.Lock()
	d := m.downloads[k]
	if d == nil {
		m.mu.Unlock()
		return nil, State{}, ErrNotCreated
	}
	st := d.state()
	switch {
	case st.Status == storage.StatusInProgress:
		ip := m.inProgress(d)
		f, ist, err := m.openInstant(ctx, k, d, plan) // releases m.mu
		if err != nil {
			return nil, st, ip
		}
		return f, ist, nil
	case st.Evicted():
		m.mu.Unlock()
		return nil, st, ErrEvicted
	case st.Status == storage.StatusError:
		m.mu.Unlock()
		return nil, st, ErrFailed
	}
	d.open++
	d.lastUsed = now().UTC()
	remote := m.fleet != nil && !d.fleet.cached
	m.mu.Unlock()

	var f storage.File
	var err error
	if remote {
		f, err = m.openRemote(ctx, k, d)
	} else {
		f, err = m.store.Open(k)
	}
	if err != nil {
		m.release(d)
	}
	if m.fleet != nil && !remote && errors.Is(err, storage.ErrNotExist) {
		m.log.Warn("fleet: the local copy is missing: reading the bucket's", zap.String("video", k.Video), zap.String("type", k.Type))
		m.mu.Lock()
		d.fleet.cached = false
		m.mu.Unlock()
		return m.Open(ctx, k)
	}
	if errors.Is(err, storage.ErrNotExist) {
		m.log.Error("packaged file is missing: the download is marked evicted", zap.String("video", k.Video), zap.String("type", k.Type))
		m.mu.Lock()
		if m.downloads[k] == d && d.rec.Status == storage.StatusReady {
			m.evictOne(d, "the packaged file was missing from storage; POST again (or GET it with on_demand) to package it again")
		}
		st = d.state()
		m.mu.Unlock()
		m.flush()
		return nil, st, ErrEvicted
	}
	if err != nil {
		return nil, st, err
	}
	return &pinnedFile{File: f, release: func() { m.release(d) }}, st, nil
}

// release ends one delivery of d's file; the store may be over max_storage only
// because of pinned files, so the pass runs again when the last one is released.
func (m *Manager) release(d *download) {
	m.mu.Lock()
	d.open--
	if d.open == 0 && m.settings.MaxStorage > 0 && m.used() > m.settings.MaxStorage {
		m.evict(nil)
	}
	m.mu.Unlock()
	m.flush()
}

// pinnedFile is a packaged file being delivered; Close releases the pin.
type pinnedFile struct {
	storage.File
	once    sync.Once
	release func()
}

func (f *pinnedFile) Close() error {
	err := f.File.Close()
	f.once.Do(f.release)
	return err
}

// SyscallConn passes the file descriptor on, so that the response can still be sent
// with sendfile (net checks for syscall.Conn, not *os.File).
func (f *pinnedFile) SyscallConn() (syscall.RawConn, error) {
	if c, ok := f.File.(syscall.Conn); ok {
		return c.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// InProgressError is ErrInProgress with when the file may be ready: ETA is the run's
// time so far scaled by what is left of it (0: not known yet, before any progress, or
// for a download another instance of a fleet packages).
type InProgressError struct{ ETA time.Duration }

func (e *InProgressError) Error() string { return ErrInProgress.Error() }

// Is makes errors.Is(err, ErrInProgress) true.
func (e *InProgressError) Is(target error) bool { return target == ErrInProgress }

// maxETA bounds the estimate: a run that has barely started says little.
const maxETA = 30 * time.Minute

// inProgress is the error of an Open of d while it is packaged. Call with m.mu held.
func (m *Manager) inProgress(d *download) error {
	e := &InProgressError{}
	if !d.started.IsZero() && d.percent > 0 {
		took := now().Sub(d.started)
		e.ETA = min(maxETA, time.Duration(float64(took)*(100-d.percent)/d.percent))
	}
	return e
}
