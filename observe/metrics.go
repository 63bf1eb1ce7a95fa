package observe

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stream-downloads/caddy-stream-downloads/handler"
	"github.com/stream-downloads/caddy-stream-downloads/packager"
)

// namespace prefixes every metric: caddy_stream_downloads_….
const namespace = "caddy_stream_downloads"

// Loader is what the gauges read at each scrape (*packager.Manager).
type Loader interface {
	Load() (queued, running int, bytes int64, files int)
}

// Metrics are the Prometheus metrics of one packaging manager (one storage_dir, or
// one storage_dir and bucket): the manager's counts (packager.Meter), the outcome of
// its runs (packager.Listener), and its handlers' requests and token checks
// (handler.Meter). They live as long as the manager, across config reloads; each
// config registers them into its own registry (Register). Every metric has the label
// store, naming the manager, so that the managers of one config do not collide.
type Metrics struct {
	load Loader

	runs           *prometheus.CounterVec
	runSeconds     *prometheus.HistogramVec
	deletions      *prometheus.CounterVec
	originRequests *prometheus.CounterVec
	originBytes    prometheus.Counter
	retries        prometheus.Counter
	requests       *prometheus.CounterVec
	delivered      prometheus.Counter
	waits          *prometheus.HistogramVec
	evictions      prometheus.Counter
	evictedBytes   prometheus.Counter
	tokenChecks    *prometheus.CounterVec
	tokenCacheHits prometheus.Counter

	queued, running, storedBytes, storedFiles *prometheus.Desc
}

// NewMetrics makes the metrics of the manager named store, whose gauges read load.
func NewMetrics(store string, load Loader) *Metrics {
	cl := prometheus.Labels{"store": store}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help, ConstLabels: cl})
	}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help, ConstLabels: cl}, labels)
	}
	gauge := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_"+name, help, nil, cl)
	}
	return &Metrics{
		load: load,
		runs: counterVec("runs_total",
			"Packaging runs ended, by download type and outcome (ready, error) and, for errors, errorReasonCode.", "type", "outcome", "code"),
		runSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "run_duration_seconds", ConstLabels: cl,
			Help:    "Duration of the packaging runs ended, by download type and outcome.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200},
		}, []string{"type", "outcome"}),
		deletions: counterVec("deletions_total", "Downloads deleted through the API, by type.", "type"),
		originRequests: counterVec("origin_requests_total",
			"Requests to the origin (playlists, segments, keys), by outcome: the status class (2xx, 3xx, 4xx, 5xx), stalled or error (no answer).", "outcome"),
		originBytes: counter("origin_bytes_total", "Body bytes fetched from the origin."),
		retries:     counter("origin_retries_total", "Origin requests tried again after a transient failure (timeout, connection error, 5xx, 408, 429)."),
		requests: counterVec("requests_total",
			"Requests answered by the handler, by kind (delivery, api, token) and status code.", "kind", "code"),
		delivered: counter("delivered_bytes_total", "Body bytes of the packaged files delivered (the files, not the API's answers)."),
		waits: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "on_demand_wait_seconds", ConstLabels: cl,
			Help:    "Waits of on-demand GETs for a download being packaged, by how they ended (ready, error, timeout, gone).",
			Buckets: []float64{0.1, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120},
		}, []string{"outcome"}),
		evictions:    counter("evictions_total", "Packaged files evicted to keep max_storage."),
		evictedBytes: counter("evicted_bytes_total", "Bytes of the packaged files evicted to keep max_storage."),
		tokenChecks: counterVec("token_checks_total",
			"Checks of the signed tokens of deliveries (or of their lack, where one is needed), by result: ok, unsigned, malformed, not_configured, expired, not_yet_valid, bad_signature, unknown_key, algorithm, invalid, not_downloadable, rule_blocked.", "result"),
		tokenCacheHits: counter("token_cache_hits_total", "Token checks answered by the cache of verified tokens (no signature check)."),

		queued:      gauge("queue_length", "Downloads waiting for a packaging job."),
		running:     gauge("running_jobs", "Packaging jobs running."),
		storedBytes: gauge("stored_bytes", "Bytes of the packaged files kept in the local store."),
		storedFiles: gauge("stored_files", "Packaged files kept in the local store."),
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.runs, m.runSeconds, m.deletions, m.originRequests, m.originBytes,
		m.retries, m.requests, m.delivered, m.waits, m.evictions, m.evictedBytes, m.tokenChecks, m.tokenCacheHits}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
	ch <- m.queued
	ch <- m.running
	ch <- m.storedBytes
	ch <- m.storedFiles
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
	if m.load == nil {
		return
	}
	q, r, b, f := m.load.Load()
	ch <- prometheus.MustNewConstMetric(m.queued, prometheus.GaugeValue, float64(q))
	ch <- prometheus.MustNewConstMetric(m.running, prometheus.GaugeValue, float64(r))
	ch <- prometheus.MustNewConstMetric(m.storedBytes, prometheus.GaugeValue, float64(b))
	ch <- prometheus.MustNewConstMetric(m.storedFiles, prometheus.GaugeValue, float64(f))
}

// Register registers m into reg (a config's registry: Caddy gives each config load a
// new one). Registering it again into the same registry (another handler of the
// manager in the config) is no error.
func (m *Metrics) Register(reg *prometheus.Registry) error {
	if reg == nil {
		return nil
	}
	err := reg.Register(m)
	if are := (prometheus.AlreadyRegisteredError{}); errors.As(err, &are) && are.ExistingCollector == prometheus.Collector(m) {
		return nil
	}
	return err
}

// Ready implements packager.Listener.
func (m *Metrics) Ready(rec packager.Record, took time.Duration) {
	t := typeLabel(rec.Type)
	m.runs.WithLabelValues(t, "ready", "").Inc()
	m.runSeconds.WithLabelValues(t, "ready").Observe(took.Seconds())
}

// Failed implements packager.Listener.
func (m *Metrics) Failed(rec packager.Record, took time.Duration) {
	t := typeLabel(rec.Type)
	m.runs.WithLabelValues(t, "error", rec.ErrorCode).Inc()
	m.runSeconds.WithLabelValues(t, "error").Observe(took.Seconds())
}

// Deleted implements packager.Listener.
func (m *Metrics) Deleted(k packager.Key) { m.deletions.WithLabelValues(typeLabel(k.Type)).Inc() }

// OriginRequest implements packager.Meter.
func (m *Metrics) OriginRequest(outcome string) { m.originRequests.WithLabelValues(outcome).Inc() }

// OriginBytes implements packager.Meter.
func (m *Metrics) OriginBytes(n int) { m.originBytes.Add(float64(n)) }

// Retry implements packager.Meter.
func (m *Metrics) Retry() { m.retries.Inc() }

// Evicted implements packager.Meter.
func (m *Metrics) Evicted(bytes int64) {
	m.evictions.Inc()
	m.evictedBytes.Add(float64(bytes))
}

// Waited implements packager.Meter.
func (m *Metrics) Waited(outcome string, took time.Duration) {
	m.waits.WithLabelValues(outcome).Observe(took.Seconds())
}

// Request implements handler.Meter.
func (m *Metrics) Request(kind string, status int, bytes int64) {
	m.requests.WithLabelValues(kind, strconv.Itoa(status)).Inc()
	if kind == "delivery" && status/100 == 2 && bytes > 0 { // the files, not the refusals
		m.delivered.Add(float64(bytes))
	}
}

// TokenCheck implements handler.Meter.
func (m *Metrics) TokenCheck(result string, cached bool) {
	m.tokenChecks.WithLabelValues(result).Inc()
	if cached {
		m.tokenCacheHits.Inc()
	}
}

// Interface guards
var (
	_ prometheus.Collector = (*Metrics)(nil)
	_ packager.Listener    = (*Metrics)(nil)
	_ packager.Meter       = (*Metrics)(nil)
	_ handler.Meter        = (*Metrics)(nil)
)
