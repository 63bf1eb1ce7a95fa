package packager

import (
	"net/http"
	"slices"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/packager/hls"
)

// The configurations using a Manager: each config load registers its Settings, and the
// newest one still registered is in force for the jobs that start from then on.

// Defaults of the creation settings.
const (
	// DefaultMaxQueue is Settings.MaxQueue's default: enough for a burst of API calls,
	// and a bound on what can be made to wait (a queued download is a few hundred bytes:
	// its playlists are read when its job starts).
	DefaultMaxQueue = 1000
	// DefaultCreateWait is Settings.CreateWait's default: long enough for an origin that
	// answers at all to say 404 or live, short of the timeouts of HTTP clients.
	DefaultCreateWait = 10 * time.Second
	// DefaultResolveTimeout is Settings.ResolveTimeout's default: past the retries of
	// an origin that answers 429 with Retry-After (4 × 30 s at most), so that such a
	// download fails with the origin's status rather than with this timeout.
	DefaultResolveTimeout = 5 * time.Minute
)

// Settings are the parts of the configuration a job uses; the latest config wins.
type Settings struct {
	Header       http.Header // extra headers on origin requests
	Concurrency  int         // parallel origin requests per job
	MaxHeight    int         // cap on the variant chosen for "default"; 0: none
	Languages    []string    // the alternative audio and subtitle languages kept (LanguageKept); nil: all
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
	// Listener hears what becomes of downloads (metrics, events, webhooks); nil: none.
	Listener Listener
	// Fleet is the bucket client and lease settings of a fleet's config; nil without.
	// Only a Manager made by NewFleetManager reads it (a reload may change credentials,
	// lease and node name, not the bucket).
	Fleet *Fleet
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
	if m.fleet != nil && s.Fleet != nil {
		m.fleet.set(*s.Fleet)
	}
	m.settings = s
	// One HTTP client for the manager's life: jobs that run across a reload keep their
	// connections to the origin.
	m.client = &hls.Client{HTTP: m.http, Header: s.Header, Limits: s.Limits, AllowedHosts: s.AllowedHosts}
	m.dispatch()
}

// Listener hears what becomes of downloads: the module's metrics, Caddy events and
// webhooks. The newest config's is in force. Its methods are called without the
// Manager's lock, from the job or the request that decided, and must not block (they
// queue what takes time). In a fleet, only the instance that decided calls them: the one
// that published the file or recorded the failure, the one that took the DELETE.
type Listener interface {
	// Ready: a packaging run made rec's file; took is the run's time.
	Ready(rec Record, took time.Duration)
	// Failed: a packaging run ended in error; rec says why.
	Failed(rec Record, took time.Duration)
	// Deleted: the download k was deleted through the API.
	Deleted(k Key)
}
