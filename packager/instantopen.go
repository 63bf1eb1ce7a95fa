package packager

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/packager/hls"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
)

// The Manager's side of instant delivery: one plan per download being packaged, made
// by the first GET and shared by the others, kept while the download is in progress.

// instantEntry is the plan of one download, or why it has none.
type instantEntry struct {
	created time.Time     // the download's Created: one made again is planned again
	done    chan struct{} // closed when plan or err is set
	plan    *instantPlan
	err     error
	used    time.Time
}

// maxPlans bounds the plans kept (a plan of an hour of video is a few MB).
const maxPlans = 8

// openInstant opens d, in progress, as the file its plan says it will be, waiting for
// the plan at most wait (0: as long as ctx allows), or fails (errNotInstant when its
// source cannot be planned). Call with m.mu held; it is released.
func (m *Manager) openInstant(ctx context.Context, k storage.Key, d *download, wait time.Duration) (storage.File, State, error) {
	if d.notInstant {
		m.mu.Unlock()
		return nil, State{}, errNotInstant
	}
	e := m.plans[k]
	if e == nil || !e.created.Equal(d.rec.Created) {
		e = &instantEntry{created: d.rec.Created, done: make(chan struct{})}
		m.prunePlans()
		m.plans[k] = e
		typ, ok := ParseType(k.Type)
		if !ok {
			m.mu.Unlock()
			return nil, State{}, errNotInstant
		}
		go m.plan(e, d, k, typ, m.jobClient(m.client, k, nil), m.settings, m.selectOptions(k), d.rec.Origin, d.resolved)
	}
	e.used = now()
	m.mu.Unlock()
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-e.done:
	case <-timeout:
		return nil, State{}, errors.New("the plan is not made yet")
	case <-ctx.Done():
		return nil, State{}, context.Cause(ctx)
	}
	if e.err != nil {
		return nil, State{}, e.err
	}
	p := e.plan
	m.mu.Lock()
	st := d.state()
	m.mu.Unlock()
	if st.Status != storage.StatusInProgress || !st.Created.Equal(e.created) {
		return nil, st, errors.New("the download changed while it was planned")
	}
	st.Size, st.ETag = p.size, p.etag
	f := &instantFile{ctx: ctx, p: p,
		live: func() *liveFile {
			if lv := d.live.Load(); lv != nil && lv.source == p.source && !p.relocated {
				return lv
			}
			return nil
		},
		stored: func() storage.File { return m.openStored(ctx, k, p.etag) },
	}
	return f, st, nil
}

// plan makes e's plan, for d, under the playlists' timeout, and logs the outcome. The
// playlists are those d's job read (resolved: closed once it has) when it is reading
// them, else read here. A failure that may pass is not kept: the next GET tries again.
func (m *Manager) plan(e *instantEntry, d *download, k storage.Key, typ Type, client *hls.Client, s Settings, opt hls.SelectOptions, origin string, resolved chan struct{}) {
	start := now()
	ctx, cancel := context.WithTimeout(m.ctx, s.ResolveTimeout)
	defer cancel()
	m.mu.Lock()
	src := d.src // its job's, when it has read them
	m.mu.Unlock()
	var err error
	switch {
	case src != nil:
	case resolved != nil: // its job is reading them
		select {
		case <-resolved:
		case <-ctx.Done():
		}
		m.mu.Lock()
		src = d.src
		m.mu.Unlock()
		if src == nil {
			err = errors.New("the download's playlists could not be read")
		}
	default:
		src, err = resolve(ctx, client, origin, opt, s.ResolveTimeout)
		src = keepLanguages(src, s.Languages)
	}
	var p *instantPlan
	if err == nil {
		p, err = planInstant(ctx, client, src, typ, s.Concurrency, s.MaxOutput)
	}
	fields := []zap.Field{zap.String("video", k.Video), zap.String("type", k.Type), zap.Float64("seconds", now().Sub(start).Seconds())}
	switch {
	case err == nil:
		m.log.Info("instant delivery planned", append(fields, zap.Int64("bytes", p.size), zap.Int("segments", len(p.segs)))...)
	case errors.Is(err, errNotInstant):
		m.log.Debug("no instant delivery: served once packaged", append(fields, zap.String("reason", err.Error()))...)
	default:
		m.log.Info("instant delivery not planned", append(fields, zap.Error(err))...)
	}
	m.mu.Lock()
	e.plan, e.err = p, err
	close(e.done)
	if passing(err) && m.plans[k] == e {
		delete(m.plans, k)
	}
	m.mu.Unlock()
}

// passing tells a failure of a plan that the next request may not meet: the origin's
// (it failed after its retries; the job meets it too or not) or a cancellation.
// Others — a source that cannot be planned, limits, a malformed stream — are kept.
func passing(err error) bool {
	return errors.As(err, new(*hls.OriginError)) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// prunePlans makes room for a plan: the least recently used one that is done goes.
// Call with m.mu held.
func (m *Manager) prunePlans() {
	for len(m.plans) >= maxPlans {
		var oldest storage.Key
		var at time.Time
		found := false
		for k, e := range m.plans {
			select {
			case <-e.done:
			default:
				continue
			}
			if !found || e.used.Before(at) {
				oldest, at, found = k, e.used, true
			}
		}
		if !found {
			return // all being made: one more for a while
		}
		delete(m.plans, oldest)
	}
}

// endPlan forgets k's plan, its download having been packaged (with ETag etag: a plan
// that said another one is logged), failed or deleted. Call with m.mu held.
func (m *Manager) endPlan(k storage.Key, etag string) {
	e := m.plans[k]
	if e == nil {
		return
	}
	delete(m.plans, k)
	select {
	case <-e.done:
		if e.plan != nil && etag != "" && e.plan.etag != etag {
			m.log.Warn("instant delivery planned another file than the one packaged (the origin changed meanwhile?)",
				zap.String("video", k.Video), zap.String("type", k.Type), zap.String("planned", e.plan.etag), zap.String("packaged", etag))
		}
	default:
	}
}

// openStored opens k's stored file for an instant delivery that switches to it: when
// it is ready with the ETag etag; nil otherwise.
func (m *Manager) openStored(ctx context.Context, k storage.Key, etag string) storage.File {
	m.mu.Lock()
	d := m.downloads[k]
	ready := d != nil && d.rec.Status == storage.StatusReady && d.rec.ETag == etag
	m.mu.Unlock()
	if !ready {
		return nil
	}
	f, st, err := m.Open(ctx, k)
	if err != nil {
		return nil
	}
	if st.ETag != etag {
		f.Close()
		return nil
	}
	return f
}
