package lease

import (
	"slices"
	"sync"
	"time"
)

// Watcher tells when a lease has expired, by observation only: a download's object
// that keeps one ETag for its lease's whole duration, as this node's monotonic clock
// measures it, has a holder that stopped renewing. Wall clocks of other nodes play no
// part, so their skew does not matter.
type Watcher struct {
	mu   sync.Mutex
	seen map[string]sighting
}

type sighting struct {
	etag  string
	since time.Time // when this node first saw etag
	last  time.Time // when it last looked
}

// maxSightings bounds what a Watcher remembers: past it, the sightings not renewed for
// the longest go first (a download watched again starts its wait again: later, never
// wrongly early).
const maxSightings = 100_000

// Observe records that key's object was read with etag and a held lease of duration d,
// and reports whether that ETag has now been seen unchanged for at least d: the lease
// has expired and may be taken over (with If-Match on etag).
func (w *Watcher) Observe(key, etag string, d time.Duration) (expired bool) {
	t := now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen == nil {
		w.seen = make(map[string]sighting)
	}
	s, ok := w.seen[key]
	if !ok || s.etag != etag {
		if !ok && len(w.seen) >= maxSightings {
			w.prune()
		}
		s = sighting{etag: etag, since: t}
	}
	s.last = t
	w.seen[key] = s
	return t.Sub(s.since) >= d
}

// Forget drops what was seen of key: its download is no longer in progress, or this
// node took it over.
func (w *Watcher) Forget(key string) {
	w.mu.Lock()
	delete(w.seen, key)
	w.mu.Unlock()
}

// prune drops the quarter of the sightings looked at least recently. Call with w.mu held.
func (w *Watcher) prune() {
	lasts := make([]time.Time, 0, len(w.seen))
	for _, s := range w.seen {
		lasts = append(lasts, s.last)
	}
	slices.SortFunc(lasts, time.Time.Compare)
	cut := lasts[len(lasts)/4]
	for k, s := range w.seen {
		if !s.last.After(cut) {
			delete(w.seen, k)
		}
	}
}
