package observe

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/stream-downloads/caddy-stream-downloads/packager"
)

type load struct{ q, r, f int }

func (l load) Load() (int, int, int64, int) { return l.q, l.r, 1000, l.f }

// TestRegister registers the metrics of two managers into one pedantic registry (as
// Caddy's), one of them twice (two handlers of a manager), and into a second registry
// (a reload): no error, and the values are the manager's in both.
func TestRegister(t *testing.T) {
	a, b := NewMetrics("/a", load{1, 2, 3}), NewMetrics("/b", load{})
	reg := prometheus.NewPedanticRegistry()
	for _, m := range []*Metrics{a, b, a} {
		if err := m.Register(reg); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Register(nil); err != nil {
		t.Fatal(err)
	}
	Multi{a}.Ready(packager.Record{Video: "v", Type: "default", Size: 5}, time.Second)
	Multi{a}.Failed(packager.Record{Video: "v", Type: "720p", ErrorCode: "not_found"}, time.Second)
	a.Request("delivery", 206, 100)
	a.Request("delivery", 403, 30)
	reg2 := prometheus.NewPedanticRegistry()
	if err := a.Register(reg2); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*prometheus.Registry{reg, reg2} {
		if n, err := count(r, "caddy_stream_downloads_runs_total"); err != nil || n != 2 {
			t.Errorf("runs_total: %d series, %v", n, err)
		}
		if n, err := count(r, "caddy_stream_downloads_queue_length"); err != nil || n != 2 && r == reg || n != 1 && r == reg2 {
			t.Errorf("queue_length: %d series, %v", n, err)
		}
	}
	if v := value(t, a.delivered); v != 100 {
		t.Errorf("delivered %v, want 100 (a refusal's body is not a delivery)", v)
	}
	if v := value(t, a.runs.WithLabelValues("height", "error", "not_found")); v != 1 {
		t.Errorf("a 720p run counts as type height: %v", v)
	}
}

func TestTypeLabel(t *testing.T) {
	for in, want := range map[string]string{"default": "default", "audio": "audio", "720p": "height", "p": "other",
		"fr.vtt": "subtitles", "x9p": "other", "": "other"} {
		if got := typeLabel(in); got != want {
			t.Errorf("typeLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

// count is the number of series of the metric name in r.
func count(r *prometheus.Registry, name string) (int, error) {
	mfs, err := r.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric()), nil
		}
	}
	return 0, nil
}

// value is a counter's value.
func value(t *testing.T, c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
