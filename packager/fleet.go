package packager

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/packager/lease"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage/bucket"
)

// Fleet makes a Manager one of many instances sharing a bucket (docs/spec.md §6): the bucket
// holds the download records, their leases and the packaged files; the Manager's local
// store is a read-through cache of files bounded by max_storage.
type Fleet struct {
	// Bucket is the shared bucket (its conditional writes checked by the caller).
	Bucket *bucket.Bucket
	// Node names this instance in the leases it holds; unique in the fleet.
	Node string
	// Lease is how long a holder may go without renewing before another instance takes
	// its download over; 0: DefaultLease.
	Lease time.Duration
	// Staleness bounds how old a state shown from memory may be; 0: DefaultStaleness.
	Staleness time.Duration
	// Unchecked says the caller could not check that the bucket honours conditional
	// writes (it did not answer): the Manager checks it in the background, answering
	// ErrUnreachable until it has. Only NewFleetManager's is read: a reload keeps the
	// bucket (endpoint, bucket, prefix) its Manager was made for.
	Unchecked bool
}

// Defaults of the fleet settings.
const (
	// DefaultLease: renewed every 10 s; a crashed holder is taken over within about a
	// minute (the lease, then the next look at it or the sweep).
	DefaultLease = 30 * time.Second
	// DefaultStaleness: what a client may see of another instance's change later than
	// the instance that made it.
	DefaultStaleness = 2 * time.Second
	// bucketTimeout bounds one request of the API's to the bucket: a slow bucket answers
	// 503 rather than holding the client.
	bucketTimeout = 10 * time.Second
)

// ErrUnreachable: the shared bucket of a fleet could not be read or written; the
// client may try again later. Ready files with a local copy are still delivered.
var ErrUnreachable = errors.New("the shared store (bucket) is unreachable")

// fleet is the Manager's side of the bucket.
type fleet struct {
	cur   atomic.Pointer[Fleet] // the newest config's (Settings.Fleet)
	watch lease.Watcher
	// absent remembers, for Staleness, the keys the bucket has no object for, so that
	// requests for ids nobody created do not each cost a read. Guarded by Manager.mu.
	absent  map[storage.Key]time.Time
	checked atomic.Bool // the bucket honours conditional writes
}

// conf returns the fleet settings in force.
func (f *fleet) conf() *Fleet { return f.cur.Load() }

// set puts f in force, with its defaults: a reload may change the bucket's credentials,
// the lease of new claims and the node's name; leases held keep their duration.
func (f *fleet) set(c Fleet) {
	if c.Lease <= 0 {
		c.Lease = DefaultLease
	}
	if c.Staleness <= 0 {
		c.Staleness = DefaultStaleness
	}
	f.cur.Store(&c)
}

// The bucket's keys, under the configured prefix:
//
//	downloads/<video>/<type>.json        the download's object: record, lease, progress
//	files/<video>/<type>.<generation>    the packaged file published by that generation
//	leases/<video>/<type>                 a marker while the download is held, for the sweep
func docKey(k storage.Key) string    { return docPrefix(k.Video) + k.Type + ".json" }
func docPrefix(video string) string  { return "downloads/" + video + "/" }
func markerKey(k storage.Key) string { return "leases/" + k.Video + "/" + k.Type }
func filePrefix(k storage.Key) string {
	return "files/" + k.Video + "/" + k.Type + "."
}
func fileKey(k storage.Key, gen int64) string { return filePrefix(k) + strconv.FormatInt(gen, 10) }

// mirror is what a download of a fleet knows of its object in the bucket.
type mirror struct {
	etag string    // of the object as last read or written
	read time.Time // when; zero: to be read
	file string    // the published file's key, when ready
	// fileETag is the bucket's ETag of file.
	fileETag string
	// cached: the local store holds the packaged file (ready downloads only);
	// caching: it is being copied there.
	cached, caching bool
	hold            *holding // this instance's lease on it, while it packages it
}

// holding is a lease this instance holds, renewed by its own goroutine until the job
// ends.
type holding struct {
	mu    sync.Mutex // one write at a time
	claim *lease.Claim
	stop  chan struct{} // closed to end the renewals
	ended chan struct{} // closed when they have ended
}

// NewFleetManager is NewManager for an instance of a fleet: cache is its local read-
// through cache of packaged files; the records are the bucket's. Downloads that were in
// progress here when the process stopped are not resumed here: their leases expire and
// an instance takes them over (this one, or another).
func NewFleetManager(cache *storage.Local, s Settings, log *zap.Logger, f Fleet) *Manager {
	m := newManager(cache, s, log)
	m.fleet = new(fleet)
	m.fleet.set(f)
	m.fleet.checked.Store(!f.Unchecked)
	recs, errs := cache.Records()
	for _, err := range errs {
		log.Warn("skipping unreadable cache record", zap.Error(err))
	}
	m.mu.Lock()
	for _, r := range recs {
		if r.Status != storage.StatusReady || !m.fileIntact(r) {
			m.later = append(m.later, func() { _ = cache.Delete(r.Key()) })
			continue
		}
		// A copy packaged before: it is delivered once the bucket confirms it is the
		// current file of its download.
		m.put(r.Key(), &download{rec: r, lastUsed: r.LastUsed, fleet: mirror{cached: true}})
	}
	m.evict(nil)
	m.mu.Unlock()
	m.flush()
	m.sched.jobs.Add(1)
	go m.sweep()
	return m
}

// errUnchecked: the bucket has not been checked for conditional writes yet.
var errUnchecked = errors.New("its conditional writes are not checked yet")

// read reads k's object, bounded by bucketTimeout.
func (f *fleet) read(ctx context.Context, k storage.Key) (lease.Doc, string, error) {
	if !f.checked.Load() {
		return lease.Doc{}, "", errUnchecked
	}
	ctx, cancel := context.WithTimeout(ctx, bucketTimeout)
	defer cancel()
	return lease.Read(ctx, f.conf().Bucket, docKey(k))
}

// unreachable wraps a bucket failure for the API.
func unreachable(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnreachable, op, err)
}
