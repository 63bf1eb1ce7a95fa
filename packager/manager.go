// Package packager runs the packaging jobs: one per (video, type), at most MaxJobs at a
// time, each fetching an HLS rendition from the origin and writing a progressive MP4 into
// the store. A Manager outlives config reloads (the module keeps it in a usage pool).
package packager

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
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

// Settings are the parts of the configuration a job uses; the latest config wins.
type Settings struct {
	Header       http.Header // extra headers on origin requests
	Concurrency  int         // parallel origin requests per job
	MaxHeight    int         // cap on the variant chosen for "default"; 0: none
	MaxJobs      int         // jobs running at once
	MaxStorage   int64       // bytes of packaged files kept; beyond, the least recently used go; 0: no limit
	Limits       hls.Limits  // what one stream may make a job fetch
	MaxOutput    int64       // bytes of one packaged file; 0: no limit
	AllowedHosts []string    // hosts besides the origin's that playlists may point at
	// MaxQueue bounds the downloads waiting for a job slot. Beyond it, Create answers
	// ErrQueueFull. 0: DefaultMaxQueue.
	MaxQueue int
	// CreateWait is how long Create waits for the origin to answer the playlists of a
	// new download whose job starts at once, so that it can refuse a video the origin
	// lacks or a live one; past it, Create answers in progress and the job goes on.
	// 0: DefaultCreateWait.
	CreateWait time.Duration
	// ResolveTimeout bounds the resolution of a download's playlists (all of them,
	// retries included); past it the download fails with an origin_error naming the
	// playlist. 0: DefaultResolveTimeout.
	ResolveTimeout time.Duration
}

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
	http      *http.Client // the client's connections, kept across reloads
	downloads map[storage.Key]*download
	queue     []*download // waiting for a slot, in arrival order
	creating  int         // downloads created for the queue whose record is being saved
	running   int
	jobs      sync.WaitGroup
	// later holds the disk writes decided under mu, in the order they were decided;
	// flush does them once mu is released (a slow disk must not hold up the API).
	later   []func()
	flushMu sync.Mutex // one flush at a time, so that the writes keep their order
	// refusals are the recent failures of on-demand creations (see CreateOnDemand).
	refusals map[storage.Key]refusal
	thrash   int // downloads packaged again soon after their eviction, for the log
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
}

// NewManager loads the store's records and starts again the downloads that were in
// progress when the process stopped.
func NewManager(store storage.Store, s Settings, log *zap.Logger) *Manager {
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		store:     store,
		log:       log,
		ctx:       ctx,
		cancel:    cancel,
		downloads: make(map[storage.Key]*download),
		refusals:  make(map[storage.Key]refusal),
		http:      hls.NewHTTPClient(),
	}
	m.apply(s) // the settings until a config registers its own with Configure
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
		m.downloads[r.Key()] = d
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

// Configure applies new settings (a config reload); running jobs keep theirs. Every
// config that uses the manager configures it; the newest one still registered is in
// force. The returned release unregisters these settings, so that a config that
// fails after Provision, and is cleaned up without ever running, gives the settings
// back to the config that goes on running.
func (m *Manager) Configure(s Settings) (release func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	reg := &s
	m.configs = append(m.configs, reg)
	m.apply(s)
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		i := slices.Index(m.configs, reg)
		if i < 0 {
			return
		}
		m.configs = slices.Delete(m.configs, i, i+1)
		if n := len(m.configs); n > 0 && i == n { // the newest went: the previous one is in force again
			m.apply(*m.configs[n-1])
		}
	}
}

// apply puts s in force. Call with m.mu held.
func (m *Manager) apply(s Settings) {
	s.MaxJobs = max(s.MaxJobs, 1)
	s.Concurrency = max(s.Concurrency, 1)
	if s.MaxQueue <= 0 {
		s.MaxQueue = DefaultMaxQueue
	}
	if s.CreateWait <= 0 {
		s.CreateWait = DefaultCreateWait
	}
	if s.ResolveTimeout <= 0 {
		s.ResolveTimeout = DefaultResolveTimeout
	}
	m.settings = s
	// One HTTP client for the manager's life: jobs that run across a reload keep their
	// connections to the origin.
	m.client = &hls.Client{HTTP: m.http, Header: s.Header, Limits: s.Limits, AllowedHosts: s.AllowedHosts}
	m.dispatch()
}

// Destruct stops every job and waits for them; in-progress records stay so that the
// next start resumes them. It implements caddy.Destructor.
func (m *Manager) Destruct() error {
	m.cancel()
	m.jobs.Wait()
	m.mu.Lock()
	m.saveRecency()
	m.mu.Unlock()
	m.flush()
	m.http.CloseIdleConnections()
	return nil
}

// State returns the state of k.
func (m *Manager) State(k storage.Key) (State, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.downloads[k]
	if d == nil {
		return State{}, false
	}
	return d.state(), true
}

// List returns the states of the video's downloads, oldest first.
func (m *Manager) List(video string) []State {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []State
	for _, typ := range dltype.Fixed() {
		if d := m.downloads[storage.Key{Video: video, Type: typ.Name}]; d != nil {
			out = append(out, d.state())
		}
	}
	sortStates(out)
	return out
}

// Delete removes the downloads of video whose type is in types (all when empty),
// stopping their jobs first. It reports whether there was anything to delete.
func (m *Manager) Delete(video string, types ...string) (bool, error) {
	m.mu.Lock()
	var victims []*download
	for k, d := range m.downloads {
		if k.Video == video && (len(types) == 0 || slices.Contains(types, k.Type)) {
			victims = append(victims, d)
			delete(m.downloads, k)
			m.unqueue(d)
			if d.cancel != nil {
				d.cancel()
			}
		}
	}
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
	return len(victims) > 0, firstErr
}

// Wait waits until k is no longer in progress, or ctx is done, and returns its state;
// false when k does not exist. It sleeps on the job's done channel, never polls.
func (m *Manager) Wait(ctx context.Context, k storage.Key) (State, bool) {
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
			st, _ := m.State(k)
			return st, true
		}
	}
}

// Open opens k's packaged file for delivery, or says why it cannot. The file is pinned
// (never evicted) until it is closed, and the open counts as a use for the LRU order.
func (m *Manager) Open(k storage.Key) (storage.File, State, error) {
	m.mu.Lock()
	d := m.downloads[k]
	if d == nil {
		m.mu.Unlock()
		return nil, State{}, ErrNotCreated
	}
	st := d.state()
	switch {
	case st.Status == storage.StatusInProgress:
		m.mu.Unlock()
		return nil, st, ErrInProgress
	case st.Evicted():
		m.mu.Unlock()
		return nil, st, ErrEvicted
	case st.Status == storage.StatusError:
		m.mu.Unlock()
		return nil, st, ErrFailed
	}
	d.open++
	d.lastUsed = now().UTC()
	m.mu.Unlock()

	f, err := m.store.Open(k)
	if err != nil {
		m.release(d)
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

// enqueue queues d's job and starts what the slots allow. Call with m.mu held.
func (m *Manager) enqueue(d *download) {
	d.rec.Status = storage.StatusInProgress
	d.rec.ErrorCode, d.rec.ErrorText = "", ""
	d.percent = 0
	if d.done == nil {
		d.done = make(chan struct{})
	}
	m.queue = append(m.queue, d)
	m.dispatch()
}

// waiting is the number of downloads that wait for a job, which MaxQueue bounds. Call
// with m.mu held.
func (m *Manager) waiting() int { return len(m.queue) + m.creating }

// unqueue drops d from the queue if it waits there. Call with m.mu held.
func (m *Manager) unqueue(d *download) {
	for i, q := range m.queue {
		if q == d {
			m.queue = append(m.queue[:i], m.queue[i+1:]...)
			close(d.done)
			return
		}
	}
}

// dispatch starts queued jobs while slots are free. Call with m.mu held.
func (m *Manager) dispatch() {
	for m.running < m.settings.MaxJobs && len(m.queue) > 0 && m.ctx.Err() == nil {
		d := m.queue[0]
		m.queue = m.queue[1:]
		ctx, cancel := context.WithCancel(m.ctx)
		d.cancel = cancel
		m.running++
		m.jobs.Add(1)
		go m.run(ctx, d, m.client, m.settings, m.selectOptions(d.rec.Key()))
	}
}

func (m *Manager) selectOptions(k storage.Key) hls.SelectOptions {
	return hls.SelectOptions{MaxHeight: m.settings.MaxHeight}
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
