package packager

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
)

// Eviction decides under m.mu and writes after: the records and removals it decides are
// queued in m.later, in order, and done by flush once the lock is released. The API
// shows an eviction at once; the disk follows, record first (so that no record ever
// says ready without its file).

// used is the bytes of the packaged files kept. Call with m.mu held.
func (m *Manager) used() int64 {
	var n int64
	for _, d := range m.downloads {
		if m.kept(d) {
			n += d.rec.Size
		}
	}
	return n
}

// kept reports whether d's packaged file is in the local store: every ready one, but
// in a fleet only those copied here (the bucket keeps them all). Call with m.mu held.
func (m *Manager) kept(d *download) bool {
	return d.rec.Status == storage.StatusReady && (m.fleet == nil || d.fleet.cached)
}

// evict evicts least-recently-used ready files until the store is within max_storage.
// It never takes a file being delivered, nor keep (the file whose packaging just ended:
// it would otherwise never be delivered when it alone exceeds the limit). Files being
// written are temp files, not candidates. With max_storage, it also saves the recency
// of the files used since the last pass (without, only Destruct does: a record per file
// delivered at every job's end is disk work the order of use does not need when nothing
// is evicted). Call with m.mu held, and flush after releasing it.
func (m *Manager) evict(keep *download) {
	limit := m.settings.MaxStorage
	if limit <= 0 {
		return
	}
	m.saveRecency()
	used := m.used()
	if used <= limit {
		return
	}
	var cands []*download
	for _, d := range m.downloads {
		if m.kept(d) && d.open == 0 && d != keep {
			cands = append(cands, d)
		}
	}
	slices.SortFunc(cands, func(a, b *download) int {
		if c := a.lastUsed.Compare(b.lastUsed); c != 0 {
			return c
		}
		if c := strings.Compare(a.rec.Video, b.rec.Video); c != 0 {
			return c
		}
		return strings.Compare(a.rec.Type, b.rec.Type)
	})
	for _, d := range cands {
		if used <= limit {
			break
		}
		size := d.rec.Size
		m.log.Info("evicting packaged file", zap.String("video", d.rec.Video), zap.String("type", d.rec.Type),
			zap.Int64("bytes", size), zap.Time("last_used", d.lastUsed))
		if mt := m.metered(); mt != nil {
			mt.Evicted(size)
		}
		m.evictOne(d, fmt.Sprintf("the packaged file was evicted to keep storage within max_storage (%d bytes); POST again (or GET it with on_demand) to package it again", limit))
		used -= size
	}
	if used > limit {
		m.log.Warn("storage stays above max_storage: the other files are being delivered or were just packaged",
			zap.Int64("used", used), zap.Int64("max_storage", limit))
	}
}

// evictOne marks d evicted and queues the disk work: its record, then the removal of
// its file. If the record cannot be saved, the file stays and d is ready again (unless
// it changed meanwhile). Call with m.mu held, and flush after releasing it.
func (m *Manager) evictOne(d *download, reason string) {
	if m.fleet != nil { // only the local copy goes: the download stays ready in the bucket
		m.uncache(d.rec.Key(), d)
		return
	}
	ready := d.rec
	rec := ready
	rec.Status, rec.ErrorCode, rec.ErrorText = storage.StatusError, CodeEvicted, reason
	rec.Size, rec.ETag, rec.Ready = 0, "", time.Time{}
	rec.LastUsed = d.lastUsed
	d.rec, d.percent = rec, 0
	d.evictedAt = now()
	k := rec.Key()
	m.later = append(m.later, func() {
		if err := m.store.SaveRecord(rec); err != nil {
			m.log.Error("evicting: saving the download record; the file stays", zap.String("video", k.Video), zap.String("type", k.Type), zap.Error(err))
			m.mu.Lock()
			if m.downloads[k] == d && evicted(d.rec) { // a new download of k replaces d, never d itself
				d.rec = ready
			}
			m.mu.Unlock()
			return
		}
		if err := m.store.Remove(k); err != nil {
			// The record says evicted; the next start removes the file again.
			m.log.Error("evicting: removing the packaged file", zap.String("video", k.Video), zap.String("type", k.Type), zap.Error(err))
		}
	})
}

// saveRecency queues the records of the ready files used since their record was saved,
// with their last use. Call with m.mu held, and flush after releasing it.
func (m *Manager) saveRecency() {
	for _, d := range m.downloads {
		if !m.kept(d) || !d.lastUsed.After(d.rec.LastUsed) {
			continue
		}
		d.rec.LastUsed = d.lastUsed
		rec := d.rec
		m.later = append(m.later, func() {
			if err := m.store.SaveRecord(rec); err != nil {
				m.log.Warn("saving the last use of a download", zap.String("video", rec.Video), zap.String("type", rec.Type), zap.Error(err))
			}
		})
	}
}

// flush does the disk work queued in m.later, in the order it was decided, including
// what other goroutines queued before; it returns when the queue is empty. Call it
// without m.mu.
func (m *Manager) flush() {
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	for {
		m.mu.Lock()
		if len(m.later) == 0 {
			m.later = nil
			m.mu.Unlock()
			return
		}
		f := m.later[0]
		m.later = m.later[1:]
		m.mu.Unlock()
		f()
	}
}
