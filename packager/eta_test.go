package packager

import (
	"errors"
	"testing"
	"time"
)

// TestInProgressETA: the Open of a download being packaged says when it may be ready,
// from the run's progress so far; nothing before any progress; at most maxETA.
func TestInProgressETA(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	old := now
	now = func() time.Time { return t0.Add(10 * time.Second) }
	t.Cleanup(func() { now = old })
	m := &Manager{}
	for _, c := range []struct {
		d    *download
		want time.Duration
	}{
		{&download{started: t0, percent: 25}, 30 * time.Second},
		{&download{started: t0, percent: 99}, 10 * time.Second / 99},
		{&download{started: t0}, 0},                      // no progress yet
		{&download{percent: 50}, 0},                      // not running here (a fleet's other instance)
		{&download{started: t0, percent: 0.001}, maxETA}, // barely started
	} {
		err := m.inProgress(c.d)
		var ip *InProgressError
		if !errors.Is(err, ErrInProgress) || !errors.As(err, &ip) || ip.ETA != c.want {
			t.Errorf("%+v: %v (ETA %v), want ErrInProgress with ETA %v", c.d.percent, err, ip, c.want)
		}
	}
}
