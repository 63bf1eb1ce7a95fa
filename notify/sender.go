// Package notify sends the module's webhooks (notify_url): a signed JSON POST to each
// configured URL when a download becomes ready, fails or is deleted, retried with capped
// exponential backoff for up to an hour, and queued on disk so that a restart loses
// none. See docs/webhooks.md.
package notify

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// Config is what a config load says of webhooks: the newest one still registered is in
// force (Sender.Configure).
type Config struct {
	URLs   []string // notify_url
	Secret string   // notify_secret, the HMAC key; never logged
}

// Policy is the retry schedule.
type Policy struct {
	Base   time.Duration // the delay after the first failed attempt
	Max    time.Duration // the cap on one delay
	Window time.Duration // no attempt later than this after the event: then it is dropped
}

// DefaultPolicy: 5s, 10s, 20s … doubling up to 10 minutes between attempts (each delay
// jittered down to half of it), for an hour after the event. A package variable so that
// tests of the whole module can shorten it.
var DefaultPolicy = Policy{Base: 5 * time.Second, Max: 10 * time.Minute, Window: time.Hour}

// Delay is the wait after the attempt-th failed attempt (1 for the first):
// min(Base·2^(attempt-1), Max), less up to a half of it by jitter, a number in [0, 1)
// (0: the whole delay, towards 1: half of it).
func (p Policy) Delay(attempt int, jitter float64) time.Duration {
	d := p.Base
	for i := 1; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	return d - time.Duration(jitter*float64(d/2))
}

// Clock is the time seam: real time, or a test's.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Defaults of the sender.
const (
	// DefaultMaxQueued bounds the deliveries kept (on disk and in memory, a few hundred
	// bytes each): beyond it the oldest is dropped, with a log line.
	DefaultMaxQueued = 10000
	// workers is how many deliveries are sent at once.
	workers = 4
	// requestTimeout bounds one attempt.
	requestTimeout = 15 * time.Second
)

// Options of New; zero values take the defaults.
type Options struct {
	Logger    *zap.Logger
	Clock     Clock
	Policy    Policy
	MaxQueued int
	Client    *http.Client
	Jitter    func() float64 // in [0, 1); default: random
}

// Sender delivers the events of one storage directory from its queue on disk.
type Sender struct {
	log    *zap.Logger
	clock  Clock
	policy Policy
	max    int
	client *http.Client
	jitter func() float64
	q      *queue

	mu       sync.Mutex
	configs  []*Config   // registered, newest last
	pending  []*delivery // oldest first
	inflight map[*delivery]bool

	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New opens the queue in dir (created if needed), loads what it holds and starts
// sending; Destruct stops it. Nothing is sent before a Configure.
func New(dir string, o Options) (*Sender, error) {
	q, ds, bad, err := openQueue(dir)
	if err != nil {
		return nil, err
	}
	s := &Sender{log: o.Logger, clock: o.Clock, policy: o.Policy, max: o.MaxQueued, client: o.Client, jitter: o.Jitter,
		q: q, pending: ds, inflight: map[*delivery]bool{}, wake: make(chan struct{}, 1)}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.clock == nil {
		s.clock = realClock{}
	}
	if s.policy == (Policy{}) {
		s.policy = DefaultPolicy
	}
	if s.max <= 0 {
		s.max = DefaultMaxQueued
	}
	if s.client == nil {
		s.client = &http.Client{
			Timeout: requestTimeout,
			// A redirect is an answer that is not 2xx, retried as such: a POST is not
			// re-sent elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if s.jitter == nil {
		s.jitter = rand.Float64
	}
	for _, err := range bad {
		s.log.Error("webhook queue", zap.Error(err))
	}
	if len(ds) > 0 {
		s.log.Info("webhook deliveries resumed from the queue on disk", zap.Int("queued", len(ds)), zap.String("dir", dir))
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.loop()
	return s, nil
}

// Destruct stops sending: attempts in flight are abandoned and stay queued on disk as
// they were, to be sent again by the next sender of the directory. Implements
// caddy.Destructor.
func (s *Sender) Destruct() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// Configure registers cfg; the newest registered is in force (its URLs, its secret)
// for every attempt from then on, those of queued deliveries included. release
// unregisters it.
func (s *Sender) Configure(cfg Config) (release func()) {
	c := &Config{URLs: slices.Clone(cfg.URLs), Secret: cfg.Secret}
	s.mu.Lock()
	s.configs = append(s.configs, c)
	s.mu.Unlock()
	s.poke()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if i := slices.Index(s.configs, c); i >= 0 {
				s.configs = slices.Delete(s.configs, i, i+1)
			}
			s.mu.Unlock()
			s.poke()
		})
	}
}

// current is the config in force, nil when none. Call with s.mu held.
func (s *Sender) current() *Config {
	if n := len(s.configs); n > 0 {
		return s.configs[n-1]
	}
	return nil
}

func (s *Sender) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// timeFormat is the payload's time: RFC 3339 in UTC, to the millisecond.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// Enqueue queues ev for each URL of the config in force: on disk, then for the sender,
// which it wakes. It does not wait for any sending. ev's ID and Time are set here when
// empty.
func (s *Sender) Enqueue(ev Event) {
	now := s.clock.Now()
	if ev.ID == "" {
		ev.ID = NewID()
	}
	if ev.Time == "" {
		ev.Time = now.UTC().Format(timeFormat)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		s.log.Error("webhook payload", zap.Error(err))
		return
	}
	s.mu.Lock()
	cfg := s.current()
	s.mu.Unlock()
	if cfg == nil {
		return
	}
	var added []*delivery
	for _, u := range cfg.URLs {
		d := &delivery{ID: ev.ID, Event: ev.Event, Video: ev.Video, Type: ev.Type, URL: u, Body: string(body), Created: now, Next: now}
		if err := s.q.save(d); err != nil {
			// Sent all the same, but a restart before it is would lose it.
			s.log.Error("webhook queue: writing a delivery", zap.String("id", d.ID), zap.Error(err))
		}
		added = append(added, d)
	}
	s.mu.Lock()
	s.pending = append(s.pending, added...)
	for len(s.pending) > s.max {
		old := s.pending[0]
		s.pending = s.pending[1:]
		s.dropLocked(old)
		s.log.Warn("webhook queue full: dropped the oldest delivery",
			append(old.fields(), zap.Int("max_queued", s.max))...)
	}
	s.mu.Unlock()
	s.poke()
}

// Queued is the number of deliveries waiting or in flight.
func (s *Sender) Queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// dropLocked removes d (already out of s.pending) from the disk. Call with s.mu held.
func (s *Sender) dropLocked(d *delivery) {
	d.dropped = true
	if err := s.q.remove(d); err != nil {
		s.log.Error("webhook queue: removing a delivery", zap.String("id", d.ID), zap.Error(err))
	}
}

// done takes d out of the queue (delivered, refused or given up).
func (s *Sender) done(d *delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inflight, d)
	if d.dropped {
		return
	}
	if i := slices.Index(s.pending, d); i >= 0 {
		s.pending = slices.Delete(s.pending, i, i+1)
	}
	s.dropLocked(d)
}

func (s *Sender) loop() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		now := s.clock.Now()
		var next time.Time
		var due []*delivery
		if s.current() != nil {
			for _, d := range s.pending {
				if s.inflight[d] {
					continue
				}
				if d.Next.After(now) {
					if next.IsZero() || d.Next.Before(next) {
						next = d.Next
					}
					continue
				}
				if len(s.inflight) >= workers {
					break // woken when one finishes
				}
				s.inflight[d] = true
				due = append(due, d)
			}
		}
		s.mu.Unlock()
		for _, d := range due {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.attempt(d)
				s.poke()
			}()
		}
		var timer <-chan time.Time
		if !next.IsZero() {
			timer = s.clock.After(next.Sub(now))
		}
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		case <-timer:
		}
	}
}

// attempt sends d once and takes it out of the queue, or schedules the next attempt.
func (s *Sender) attempt(d *delivery) {
	s.mu.Lock()
	cfg := s.current()
	s.mu.Unlock()
	now := s.clock.Now()
	switch {
	case cfg == nil:
		s.mu.Lock()
		delete(s.inflight, d)
		s.mu.Unlock()
		return
	case !slices.Contains(cfg.URLs, d.URL):
		s.log.Warn("webhook dropped: its notify_url is no longer configured", d.fields()...)
		s.done(d)
		return
	case now.Sub(d.Created) > s.policy.Window:
		s.log.Warn("webhook dropped: not delivered within the retry window", append(d.fields(), zap.Duration("window", s.policy.Window))...)
		s.done(d)
		return
	}
	status, retryAfter, err := s.send(d, cfg.Secret, now)
	if s.ctx.Err() != nil { // stopping: the delivery stays queued as it was
		s.mu.Lock()
		delete(s.inflight, d)
		s.mu.Unlock()
		return
	}
	fields := append(d.fields(), zap.Int("attempt", d.Attempts+1))
	if err == nil && status/100 == 2 {
		s.log.Debug("webhook delivered", append(fields, zap.Int("status", status))...)
		s.done(d)
		return
	}
	if err == nil && status/100 == 4 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests {
		s.log.Warn("webhook refused by the receiver: dropped", append(fields, zap.Int("status", status))...)
		s.done(d)
		return
	}
	if err != nil {
		fields = append(fields, zap.String("error", redactError(err, d.URL)))
	} else {
		fields = append(fields, zap.Int("status", status))
	}
	delay := s.policy.Delay(d.Attempts+1, s.jitter())
	if retryAfter > delay {
		delay = min(retryAfter, s.policy.Max)
	}
	end := s.clock.Now()
	if end.Add(delay).Sub(d.Created) > s.policy.Window {
		s.log.Warn("webhook dropped: not delivered within the retry window", append(fields, zap.Duration("window", s.policy.Window))...)
		s.done(d)
		return
	}
	s.log.Debug("webhook attempt failed: will retry", append(fields, zap.Duration("retry_in", delay))...)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inflight, d)
	if d.dropped {
		return
	}
	d.Attempts++
	d.Next = end.Add(delay)
	if err := s.q.save(d); err != nil {
		s.log.Error("webhook queue: writing a delivery", zap.String("id", d.ID), zap.Error(err))
	}
}

// send POSTs d's body, signed with secret at now; it answers the status and the
// Retry-After of a 429 or 503.
func (s *Sender) send(d *delivery, secret string, now time.Time) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(s.ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, strings.NewReader(d.Body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "caddy-stream-downloads-webhook")
	req.Header.Set(IDHeader, d.ID)
	req.Header.Set(SignatureHeader, Sign([]byte(secret), now, []byte(d.Body)))
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	var ra time.Duration
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n > 0 {
			ra = time.Duration(n) * time.Second
		}
	}
	return resp.StatusCode, ra, nil
}

// fields name a delivery in log lines: never its secret, and its URL without
// credentials or query.
func (d *delivery) fields() []zap.Field {
	return []zap.Field{zap.String("id", d.ID), zap.String("event", d.Event), zap.String("video", d.Video),
		zap.String("type", d.Type), zap.String("url", Redact(d.URL))}
}

// Redact is u without user info, query and fragment, which may hold credentials.
func Redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Scheme + "://" + p.Host + p.Path
}

// redactError is err's text with the URL it may quote redacted.
func redactError(err error, u string) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return strings.ReplaceAll(err.Error(), u, Redact(u))
}

// NewID returns a new event id: "evt_" and 32 hex digits.
func NewID() string {
	var b [16]byte
	if _, err := cryptoRead(b[:]); err != nil {
		panic(err)
	}
	return "evt_" + hex.EncodeToString(b[:])
}

var cryptoRead = cryptorand.Read

// The senders of storage directories, kept across config reloads.
var senders = caddy.NewUsagePool()

// Acquire returns the sender of storageDir (its queue is storageDir/.webhooks), made
// when no config uses it yet, with cfg registered; release unregisters cfg and ends this
// use (the last one stops the sender; its queue stays on disk).
func Acquire(storageDir string, cfg Config, log *zap.Logger) (*Sender, func(), error) {
	dir := filepath.Join(storageDir, QueueDir)
	v, _, err := senders.LoadOrNew(dir, func() (caddy.Destructor, error) {
		return New(dir, Options{Logger: log})
	})
	if err != nil {
		return nil, nil, err
	}
	s := v.(*Sender)
	unregister := s.Configure(cfg)
	var once sync.Once
	return s, func() {
		once.Do(func() {
			unregister()
			senders.Delete(dir)
		})
	}, nil
}
