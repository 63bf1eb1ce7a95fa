package packager

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/packager/hls"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
)

// What the Manager shows of itself: the admin view (Snapshot), the gauges of the
// metrics (Load), and the counts it hands a Meter (Instrument).

// maxLastErrors bounds the failures a Snapshot lists.
const maxLastErrors = 20

// Snapshot is what a Manager is doing, for the admin view.
type Snapshot struct {
	// Node is this instance's name in a fleet; empty without one.
	Node string `json:"node,omitempty"`
	// MaxJobs is the number of jobs that may run at once.
	MaxJobs int `json:"max_jobs"`
	// Jobs are the packaging runs of this instance, oldest first.
	Jobs []Job `json:"jobs"`
	// Queue are the downloads waiting for a job, in the order they will start.
	Queue []Queued `json:"queue"`
	// Storage is the use of the local store.
	Storage Usage `json:"storage"`
	// Errors are the last failed runs, newest last.
	Errors []Failure `json:"errors"`
}

// Job is one packaging run in progress.
type Job struct {
	Video   string    `json:"video"`
	Type    string    `json:"type"`
	Percent float64   `json:"percent"`
	Bytes   int64     `json:"bytes"` // fetched from the origin so far
	Since   time.Time `json:"since"`
}

// Queued is a download waiting for a job.
type Queued struct {
	Video string `json:"video"`
	Type  string `json:"type"`
}

// Usage is the packaged files kept in the local store.
type Usage struct {
	Bytes      int64 `json:"bytes"`
	Files      int   `json:"files"`
	MaxStorage int64 `json:"max_storage"` // 0: no limit
}

// Failure is one failed run.
type Failure struct {
	Time   time.Time `json:"time"`
	Video  string    `json:"video"`
	Type   string    `json:"type"`
	Code   string    `json:"code"`
	Reason string    `json:"reason"`
}

// Snapshot returns what m is doing. It takes the lock once and copies little.
func (m *Manager) Snapshot() Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Snapshot{
		MaxJobs: m.settings.MaxJobs,
		Jobs:    []Job{},
		Queue:   make([]Queued, 0, len(m.sched.queue)),
		Errors:  append([]Failure{}, m.failures...),
	}
	if m.fleet != nil {
		if c := m.fleet.conf(); c != nil {
			s.Node = c.Node
		}
	}
	for _, d := range m.sched.queue {
		s.Queue = append(s.Queue, Queued{Video: d.rec.Video, Type: d.rec.Type})
	}
	for _, d := range m.downloads {
		if !d.started.IsZero() {
			s.Jobs = append(s.Jobs, Job{Video: d.rec.Video, Type: d.rec.Type, Percent: d.percent, Bytes: d.fetched.Load(), Since: d.started})
		}
	}
	sortJobs(s.Jobs)
	s.Storage.Bytes, s.Storage.Files = m.usage()
	s.Storage.MaxStorage = m.settings.MaxStorage
	return s
}

// Load is what the gauges of the metrics read: the downloads waiting for a job, the
// jobs running, and the bytes and number of the packaged files kept.
func (m *Manager) Load() (queued, running int, bytes int64, files int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	bytes, files = m.usage()
	return m.sched.waiting(), m.sched.running, bytes, files
}

// usage is the bytes and number of the packaged files kept. Call with m.mu held.
func (m *Manager) usage() (bytes int64, files int) {
	for _, d := range m.downloads {
		if m.kept(d) {
			bytes += d.rec.Size
			files++
		}
	}
	return bytes, files
}

func sortJobs(j []Job) {
	slices.SortFunc(j, func(a, b Job) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		if c := strings.Compare(a.Video, b.Video); c != 0 {
			return c
		}
		return strings.Compare(a.Type, b.Type)
	})
}

// noteFailure keeps the failure of k's run for Snapshot. Call with m.mu held.
func (m *Manager) noteFailure(k storage.Key, code, reason string) {
	if len(m.failures) == maxLastErrors {
		m.failures = append(m.failures[:0], m.failures[1:]...)
	}
	m.failures = append(m.failures, Failure{Time: now().UTC(), Video: k.Video, Type: k.Type, Code: code, Reason: reason})
}

// Meter counts what a Manager does, for the module's metrics (Instrument). Its
// methods must be cheap and safe for concurrent use.
type Meter interface {
	hls.Meter // the origin requests of every job
	// Evicted: a packaged file of size bytes was evicted to keep max_storage.
	Evicted(bytes int64)
	// Waited: an on-demand GET waited took for a download being packaged, which was
	// then "ready", "error" (failed), "timeout" (still in progress) or "gone".
	Waited(outcome string, took time.Duration)
}

type meterBox struct{ Meter }

// Instrument makes m count into mt from now on (the metrics of the manager, which
// live as long as it does).
func (m *Manager) Instrument(mt Meter) { m.meter.Store(&meterBox{mt}) }

// metered is m's Meter, or nil.
func (m *Manager) metered() Meter {
	if b := m.meter.Load(); b != nil {
		return b.Meter
	}
	return nil
}

// startJob marks d's job as running (for Snapshot) and returns the client the job
// fetches with (c, logging as the job, with its video and type, and counting its
// bytes) and the func that marks the job ended.
func (m *Manager) startJob(d *download, c *hls.Client) (*hls.Client, func()) {
	k := d.rec.Key()
	m.mu.Lock()
	started := now()
	d.started = started
	d.fetched.Store(0)
	m.mu.Unlock()
	return m.jobClient(c, k, &d.fetched), func() {
		m.mu.Lock()
		if d.started.Equal(started) { // not a job of d started since
			d.started = time.Time{}
		}
		m.mu.Unlock()
	}
}

// jobClient is c for the requests about k: it logs with k's video and type, and
// counts into m's Meter and, when not nil, into fetched.
func (m *Manager) jobClient(c *hls.Client, k storage.Key, fetched *atomic.Int64) *hls.Client {
	cp := *c
	cp.Log = m.log.With(zap.String("video", k.Video), zap.String("type", k.Type))
	if mt := m.metered(); mt != nil || fetched != nil {
		cp.Meter = jobMeter{mt, fetched}
	}
	return &cp
}

// jobMeter passes the counts of one job's requests on, its bytes also to fetched.
type jobMeter struct {
	mt      Meter // nil: none
	fetched *atomic.Int64
}

func (j jobMeter) OriginRequest(outcome string) {
	if j.mt != nil {
		j.mt.OriginRequest(outcome)
	}
}

func (j jobMeter) OriginBytes(n int) {
	if j.fetched != nil {
		j.fetched.Add(int64(n))
	}
	if j.mt != nil {
		j.mt.OriginBytes(n)
	}
}

func (j jobMeter) Retry() {
	if j.mt != nil {
		j.mt.Retry()
	}
}

// FleetCounts is what the admin view shows of a whole fleet, as the bucket says.
type FleetCounts struct {
	// InProgress is the number of downloads an instance of the fleet holds (their lease
	// markers), counted up to maxFleetCount; Capped says there were more.
	InProgress int  `json:"in_progress"`
	Capped     bool `json:"capped,omitempty"`
	// Error says why the bucket could not be asked.
	Error string `json:"error,omitempty"`
}

// maxFleetCount bounds the markers FleetCounts lists.
const maxFleetCount = 10_000

// FleetCounts counts what the whole fleet is doing; nil without a fleet. It reads the
// bucket (within ctx), never under the lock.
func (m *Manager) FleetCounts(ctx context.Context) *FleetCounts {
	if m.fleet == nil {
		return nil
	}
	var c FleetCounts
	ctx, cancel := context.WithTimeout(ctx, bucketTimeout)
	defer cancel()
	for _, err := range m.fleet.conf().Bucket.List(ctx, "leases/") {
		if err != nil {
			c.Error = err.Error()
			break
		}
		if c.InProgress == maxFleetCount {
			c.Capped = true
			break
		}
		c.InProgress++
	}
	return &c
}
