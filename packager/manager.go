// Package packager runs the packaging jobs: one per (video, type), at most MaxJobs at a
// time, each fetching an HLS rendition from the origin and writing a progressive MP4 into
// the store. A Manager outlives config reloads (the module keeps it in a usage pool).
//
// The rooms: manager.go is the registry (the downloads and their states: State, List,
// Wait, Delete); create.go admits new downloads; scheduler.go is the job queue; run.go and
// remux.go are one job; open.go pins files for delivery; evict.go keeps max_storage;
// config.go holds the settings of the configs using the Manager.
package packager

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/packager/dltype"
	"github.com/stream-downloads/caddy-stream-downloads/packager/hls"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
)

// now is the clock seam for record times.
var now = time.Now

// Errors of Open, for the delivery's status codes.
var (
	ErrNotCreated = errors.New("download not created")
	ErrInProgress = errors.New("download is being packaged")
	ErrFailed     = errors.New("download failed")
	// ErrEvicted: the download was packaged, but its file was removed to keep the store
	// under max_storage (or went missing); creating it again packages it again.
	ErrEvicted = errors.New("download evicted")
	// ErrQueueFull: Create refused a new download because MaxQueue downloads already
	// wait for a job; the client may try again later.
	ErrQueueFull = errors.New("too many downloads are waiting to be packaged")
	// ErrStorage matches the failures of the local store (disk full, permissions). Their
	// texts name no local path, so they may be shown to clients; the log has the rest.
	ErrStorage = errors.New("storage error")
)

// CodeEvicted is the errorReasonCode of a download whose file was evicted. Such a
// download keeps its record with status error (the API knows inprogress, ready and
// error only): a POST, or a GET with on_demand, packages it again, and as the output is
// deterministic the file comes back with the same bytes and ETag.
const CodeEvicted = "evicted"

// State is a download as the API reports it.
type State struct {
	storage.Record
	// Percent is 0–100, never going down during one run, 100 exactly when ready.
	Percent float64
}

// Evicted reports whether the download was packaged and its file evicted since.
func (s State) Evicted() bool { return evicted(s.Record) }

func evicted(r storage.Record) bool {
	return r.Status == storage.StatusError && r.ErrorCode == CodeEvicted
}

// Manager owns the downloads of one store.
type Manager struct {
	store storage.Store
	log   *zap.Logger

	ctx    context.Context // cancelled by Destruct
	cancel context.CancelFunc

	mu        sync.Mutex
	configs   []*Settings // of every config using the manager, oldest first
	settings  Settings
	client    *hls.Client
	http      *http.Client              // the client's connections, kept across reloads
	downloads map[storage.Key]*download // changed by put and remove only
	// heights are the types of the downloads beyond the fixed ones (heights), by video:
	// what List looks up besides dltype.Fixed.
	heights map[string][]string
	sched   scheduler
	// later holds the disk writes decided under mu, in the order they were decided;
	// flush does them once mu is released (a slow disk must not hold up the API).
	later   []func()
	flushMu sync.Mutex // one flush at a time, so that the writes keep their order
	// fleet is set when the Manager is one instance of a fleet (NewFleetManager).
	fleet *fleet
	// refusals are the recent failures of on-demand creations (see CreateOnDemand).
	refusals map[storage.Key]refusal
	thrash   int       // downloads packaged again soon after their eviction, for the log
	failures []Failure // the last failed runs, for Snapshot

	meter atomic.Pointer[meterBox] // Instrument's

	plans map[storage.Key]*instantEntry // instant delivery's (instantopen.go)
}

// download is one (video, type); its fields are guarded by Manager.mu.
type download struct {
	rec     storage.Record
	percent float64
	// A download holds no playlist or segment list until its job starts: the job
	// resolves the playlists (as after a restart), so the queue holds keys only.
	cancel context.CancelFunc // of the running job
	done   chan struct{}      // closed when the job has ended; nil when none was started
	// decided is closed when Create's callers stop waiting (see Create); nil for a
	// download that was not created by this process.
	decided   chan struct{}
	isDecided bool      // decided is closed
	committed bool      // its record is saved: it exists for good, a refusal becomes an error record
	refused   error     // why its creation was refused (not found, live, storage): d left the map
	prev      *download // the failed or evicted download it replaces, back if it is refused
	// anon: created by an on-demand GET and not by the API since. It has no record
	// until it is ready or fails after media came (media), and is forgotten if it fails
	// before (CreateOnDemand).
	anon      bool
	media     bool      // its playlists were read: the origin has the video
	evictedAt time.Time // when it was evicted in this process
	// open counts the deliveries reading the file: a file with open > 0 is never evicted.
	open int
	// lastUsed is when the file last started being delivered or became ready. It is
	// saved into rec.LastUsed (and the record file) lazily: at each eviction pass (with
	// max_storage) and at Destruct, not on every delivery.
	lastUsed time.Time
	// fleet is what it knows of its object in a fleet's bucket (Manager.fleet).
	fleet mirror
	// started is when its job started, while it runs (zero otherwise); fetched counts
	// the bytes the job got from the origin (Snapshot).
	started time.Time
	fetched atomic.Int64
	// live is the staging file of its job while it writes it, which instant deliveries
	// read (liveFile); nil otherwise.
	live atomic.Pointer[liveFile]
	// resolved is closed by its job once it has read the playlists, src (nil when
	// that failed) being what it read: an instant delivery's plan takes it rather than
	// reading them again. nil before a job starts. notInstant: its source is known not
	// to be plannable (MPEG-TS, encrypted), so no plan is tried.
	resolved   chan struct{}
	src        *hls.Source
	notInstant bool
}

// NewManager loads the store's records and starts again the downloads that were in
// progress when the process stopped.
func NewManager(store storage.Store, s Settings, log *zap.Logger) *Manager {
	m := newManager(store, s, log)
	recs, errs := store.Records()
	for _, err := range errs {
		log.Error("skipping unreadable download record", zap.Error(err))
	}
	intact := make(map[storage.Key]bool)
	for _, r := range recs {
		if r.Status == storage.StatusReady {
			intact[r.Key()] = m.fileIntact(r)
		}
	}
	m.mu.Lock()
	defer m.flush()
	defer m.mu.Unlock()
	for _, r := range recs {
		d := &download{rec: r, lastUsed: r.LastUsed}
		if r.Ready.After(d.lastUsed) {
			d.lastUsed = r.Ready
		}
		m.put(r.Key(), d)
		switch {
		case r.Status == storage.StatusInProgress:
			log.Info("resuming download", zap.String("video", r.Video), zap.String("type", r.Type))
			m.enqueue(d)
		case evicted(r):
			// A crash between saving the record and removing the file leaves the file.
			m.later = append(m.later, func() {
				if err := store.Remove(r.Key()); err != nil {
					log.Error("removing an evicted file", zap.String("video", r.Video), zap.String("type", r.Type), zap.Error(err))
				}
			})
		case r.Status == storage.StatusReady && !intact[r.Key()]:
			log.Error("packaged file is missing or has the wrong size: the download is marked evicted",
				zap.String("video", r.Video), zap.String("type", r.Type))
			m.evictOne(d, "the packaged file was missing from storage; POST again (or GET it with on_demand) to package it again")
		}
	}
	m.evict(nil)
	return m
}

func newManager(store storage.Store, s Settings, log *zap.Logger) *Manager {
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		store:     store,
		log:       log,
		ctx:       ctx,
		cancel:    cancel,
		downloads: make(map[storage.Key]*download),
		heights:   make(map[string][]string),
		refusals:  make(map[storage.Key]refusal),
		plans:     make(map[storage.Key]*instantEntry),
		http:      hls.NewHTTPClient(),
	}
	m.apply(s) // the settings until a config registers its own with Configure
	return m
}

// fileIntact reports whether the packaged file of a ready record is there whole.
func (m *Manager) fileIntact(r storage.Record) bool {
	f, err := m.store.Open(r.Key())
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	return err == nil && fi.Size() == r.Size
}

// Destruct stops every job and waits for them; in-progress records stay so that the
// next start resumes them. It implements caddy.Destructor.
func (m *Manager) Destruct() error {
	m.cancel()
	m.sched.jobs.Wait()
	m.mu.Lock()
	m.saveRecency()
	m.mu.Unlock()
	m.flush()
	m.http.CloseIdleConnections()
	return nil
}

// State returns the state of k. In a fleet it is read from the bucket when what this
// instance knows is older than Fleet.Staleness; ErrUnreachable when the bucket does not
// answer (but for a ready download, shown as last known).
func (m *Manager) State(ctx context.Context, k storage.Key) (State, bool, error) {
	if err := m.refresh(ctx, k); err != nil {
		return State{}, false, err
	}
	st, ok := m.state(k)
	return st, ok, nil
}

func (m *Manager) state(k storage.Key) (State, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.downloads[k]
	if d == nil {
		return State{}, false
	}
	return d.state(), true
}

// List returns the states of the video's downloads, oldest first (refreshed as State
// does).
func (m *Manager) List(ctx context.Context, video string) ([]State, error) {
	if m.fleet != nil {
		for _, typ := range m.typesOf(ctx, video) {
			if err := m.refresh(ctx, storage.Key{Video: video, Type: typ}); err != nil {
				return nil, err
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []State
	for _, typ := range append(fixedNames(), m.heights[video]...) {
		if d := m.downloads[storage.Key{Video: video, Type: typ}]; d != nil {
			out = append(out, d.state())
		}
	}
	sortStates(out)
	return out, nil
}

// fixedNames are the names of the types without a parameter.
func fixedNames() []string {
	var names []string
	for _, t := range dltype.Fixed() {
		names = append(names, t.Name)
	}
	return names
}

// put makes d the download of k. Call with m.mu held.
func (m *Manager) put(k storage.Key, d *download) {
	if _, ok := m.downloads[k]; !ok && !slices.Contains(fixedNames(), k.Type) {
		m.heights[k.Video] = append(m.heights[k.Video], k.Type)
	}
	m.downloads[k] = d
}

// remove forgets the download of k. Call with m.mu held.
func (m *Manager) remove(k storage.Key) {
	if _, ok := m.downloads[k]; !ok {
		return
	}
	delete(m.downloads, k)
	if types := slices.DeleteFunc(m.heights[k.Video], func(t string) bool { return t == k.Type }); len(types) > 0 {
		m.heights[k.Video] = types
	} else {
		delete(m.heights, k.Video)
	}
}

// typesOf returns the types of video's downloads that a fleet's instance may know of:
// the fixed ones, those this instance has, and those the bucket has objects for (a
// bucket that does not answer lists none: refresh then says so).
func (m *Manager) typesOf(ctx context.Context, video string) []string {
	m.mu.Lock()
	types := append(fixedNames(), m.heights[video]...)
	m.mu.Unlock()
	listed, err := m.bucketTypes(ctx, video)
	if err != nil {
		m.log.Debug("fleet: listing a video's downloads", zap.String("video", video), zap.Error(err))
	}
	for _, typ := range listed {
		if !slices.Contains(types, typ) {
			types = append(types, typ)
		}
	}
	return types
}

// Delete removes the downloads of video whose type is in types (all when empty),
// stopping their jobs first. It reports whether there was anything to delete. In a
// fleet the bucket's objects and files go first; the other instances see it within
// Fleet.Staleness, and one packaging it stops at its next renewal.
func (m *Manager) Delete(ctx context.Context, video string, types ...string) (bool, error) {
	found, err := m.deleteObjects(ctx, video, types)
	if err != nil {
		return false, err
	}
	m.mu.Lock()
	var victims []*download
	for k, d := range m.downloads {
		if k.Video == video && (len(types) == 0 || slices.Contains(types, k.Type)) {
			victims = append(victims, d)
			m.remove(k)
			m.endPlan(k, "")
			m.unqueue(d)
			if d.cancel != nil {
				d.cancel()
			}
		}
	}
	listener := m.settings.Listener
	m.mu.Unlock()
	// An eviction of a victim decided before it left the map writes its record first.
	m.flush()
	var firstErr error
	for _, d := range victims {
		if d.done != nil {
			<-d.done
		}
		if err := m.store.Delete(d.rec.Key()); err != nil {
			m.log.Error("deleting a download's files", zap.String("video", video), zap.String("type", d.rec.Type), zap.Error(err))
			if firstErr == nil {
				firstErr = storageError{"deleting the download's files", err}
			}
		}
	}
	if m.fleet == nil { // in a fleet, the objects it removed from the bucket say
		for _, d := range victims {
			found = append(found, d.rec.Key())
		}
	}
	if listener != nil {
		for _, k := range found {
			listener.Deleted(k)
		}
	}
	return len(found) > 0 || len(victims) > 0, firstErr
}

// Wait waits until k is no longer in progress, or ctx is done, and returns its state;
// false when k does not exist. It sleeps on the job's done channel, never polls (but in
// a fleet, for a download packaged by another instance: every Fleet.Staleness).
func (m *Manager) Wait(ctx context.Context, k storage.Key) (State, bool) {
	mt := m.metered()
	if before, ok := m.state(k); mt == nil || !ok || before.Status != storage.StatusInProgress {
		return m.wait(ctx, k) // no wait to count
	}
	start := now()
	st, ok := m.wait(ctx, k)
	outcome := "gone"
	switch {
	case !ok:
	case st.Status == storage.StatusReady:
		outcome = "ready"
	case st.Status == storage.StatusInProgress:
		outcome = "timeout"
	default:
		outcome = "error"
	}
	mt.Waited(outcome, now().Sub(start))
	return st, ok
}

func (m *Manager) wait(ctx context.Context, k storage.Key) (State, bool) {
	if m.fleet != nil {
		return m.fleetWait(ctx, k)
	}
	for {
		m.mu.Lock()
		d := m.downloads[k]
		if d == nil {
			m.mu.Unlock()
			return State{}, false
		}
		st, done := d.state(), d.done
		m.mu.Unlock()
		if st.Status != storage.StatusInProgress || done == nil {
			return st, true
		}
		select {
		case <-done:
		case <-ctx.Done():
			return st, true
		}
		m.mu.Lock()
		stopped := m.downloads[k] == d && d.done == done && d.rec.Status == storage.StatusInProgress
		m.mu.Unlock()
		if stopped { // the job was interrupted (shutdown) and not started again
			st, _ := m.state(k)
			return st, true
		}
	}
}

// selectOptions is how k's variant is chosen: a height type's height, or the highest
// within MaxHeight.
func (m *Manager) selectOptions(k storage.Key) hls.SelectOptions {
	if t, ok := dltype.Parse(k.Type); ok && t.Height > 0 {
		return hls.SelectOptions{Height: t.Height}
	}
	return hls.SelectOptions{MaxHeight: m.settings.MaxHeight}
}

// endResolve says the playlists of d's job are read (d.src; nil: they could not be):
// a plan waiting for them goes on, one made later reads them itself. Call with m.mu
// held.
func (d *download) endResolve() {
	if d.resolved != nil {
		close(d.resolved)
		d.resolved = nil
	}
}

func (d *download) state() State {
	st := State{Record: d.rec, Percent: d.percent}
	if d.rec.Status == storage.StatusReady {
		st.Percent = 100
	}
	return st
}

// failRecord records err as the reason r failed.
func failRecord(r *storage.Record, err error) {
	r.Status = storage.StatusError
	r.ErrorCode, r.ErrorText = classify(err)
}

// sortStates orders states by creation, then type, for stable API answers.
func sortStates(s []State) {
	slices.SortFunc(s, func(a, b State) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.Type, b.Type)
	})
}
