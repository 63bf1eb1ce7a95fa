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
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

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
)

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
}

// State is a download as the API reports it.
type State struct {
	storage.Record
	// Percent is 0–100, never going down during one run, 100 exactly when ready.
	Percent float64
}

// Manager owns the downloads of one store.
type Manager struct {
	store storage.Store
	log   *zap.Logger

	ctx    context.Context // cancelled by Destruct
	cancel context.CancelFunc
	sf     singleflight.Group

	mu        sync.Mutex
	settings  Settings
	client    *hls.Client
	downloads map[storage.Key]*download
	queue     []*download // waiting for a slot, in arrival order
	running   int
	jobs      sync.WaitGroup
}

// download is one (video, type); rec is guarded by Manager.mu.
type download struct {
	rec     storage.Record
	percent float64
	src     *hls.Source        // resolved at creation; nil when a restart must resolve again
	cancel  context.CancelFunc // of the running job
	done    chan struct{}      // closed when the job has ended; nil when none was started
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
	}
	m.Configure(s)
	recs, errs := store.Records()
	for _, err := range errs {
		log.Error("skipping unreadable download record", zap.Error(err))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range recs {
		d := &download{rec: r}
		m.downloads[r.Key()] = d
		if r.Status == storage.StatusInProgress {
			log.Info("resuming download", zap.String("video", r.Video), zap.String("type", r.Type))
			m.enqueue(d)
		}
	}
	return m
}

// Configure applies new settings (a config reload); running jobs keep theirs.
func (m *Manager) Configure(s Settings) {
	if s.MaxJobs < 1 {
		s.MaxJobs = 1
	}
	if s.Concurrency < 1 {
		s.Concurrency = 1
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settings = s
	m.client = &hls.Client{Header: s.Header, Limits: s.Limits, AllowedHosts: s.AllowedHosts}
	m.dispatch()
}

// Destruct stops every job and waits for them; in-progress records stay so that the
// next start resumes them. It implements caddy.Destructor.
func (m *Manager) Destruct() error {
	m.cancel()
	m.jobs.Wait()
	return nil
}

// Create creates the download k from the playlist at origin, or returns its state if it
// exists (a failed one starts again). It answers hls.ErrNotFound when the origin has no
// such video and hls.ErrLive for a live playlist, creating nothing.
func (m *Manager) Create(ctx context.Context, k storage.Key, origin string) (State, error) {
	if st, ok := m.existing(k); ok {
		return st, nil
	}
	// One resolution per key however many requests race here; it runs detached from
	// the request that happened to start it, so a client that goes away cancels nothing.
	_, err, _ := m.sf.Do(k.Video+"/"+k.Type, func() (any, error) {
		if _, ok := m.existing(k); ok {
			return nil, nil
		}
		m.mu.Lock()
		client, opt := m.client, m.selectOptions(k)
		m.mu.Unlock()
		rctx, cancel := context.WithTimeout(m.ctx, 2*time.Minute)
		defer cancel()
		src, err := client.Resolve(rctx, origin, opt)
		if errors.Is(err, hls.ErrNotFound) || errors.Is(err, hls.ErrLive) {
			return nil, err
		}
		d := &download{rec: storage.Record{
			Video: k.Video, Type: k.Type, Status: storage.StatusInProgress,
			Origin: origin, Created: now().UTC(),
		}, src: src}
		m.mu.Lock()
		defer m.mu.Unlock()
		if err != nil {
			d.fail(err)
		}
		if err := m.store.SaveRecord(d.rec); err != nil {
			return nil, err
		}
		m.downloads[k] = d
		if err == nil {
			m.enqueue(d)
		}
		return nil, nil
	})
	if err != nil {
		return State{}, err
	}
	st, _ := m.State(k)
	return st, nil
}

// existing returns the state of k unless it does not exist or failed.
func (m *Manager) existing(k storage.Key) (State, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.downloads[k]
	if d == nil || d.rec.Status == storage.StatusError {
		return State{}, false
	}
	return d.state(), true
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
	for k, d := range m.downloads {
		if k.Video == video {
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
	var firstErr error
	for _, d := range victims {
		if d.done != nil {
			<-d.done
		}
		if err := m.store.Delete(d.rec.Key()); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return len(victims) > 0, firstErr
}

// Open opens k's packaged file for delivery, or says why it cannot.
func (m *Manager) Open(k storage.Key) (storage.File, State, error) {
	st, ok := m.State(k)
	switch {
	case !ok:
		return nil, st, ErrNotCreated
	case st.Status == storage.StatusInProgress:
		return nil, st, ErrInProgress
	case st.Status == storage.StatusError:
		return nil, st, ErrFailed
	}
	f, err := m.store.Open(k)
	if errors.Is(err, storage.ErrNotExist) {
		m.log.Error("packaged file is missing", zap.String("video", k.Video), zap.String("type", k.Type))
		return nil, st, ErrNotCreated
	}
	return f, st, err
}

// enqueue queues d's job and starts what the slots allow. Call with m.mu held.
func (m *Manager) enqueue(d *download) {
	d.rec.Status = storage.StatusInProgress
	d.rec.ErrorCode, d.rec.ErrorText = "", ""
	d.percent = 0
	d.done = make(chan struct{})
	m.queue = append(m.queue, d)
	m.dispatch()
}

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

// fail records err as the reason d failed. Call with m.mu held.
func (d *download) fail(err error) {
	d.rec.Status = storage.StatusError
	d.rec.ErrorCode, d.rec.ErrorText = classify(err)
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
