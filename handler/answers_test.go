package handler

import (
	"fmt"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/packager"
)

// TestInProgressRetry: a 503 while packaging says to come back when the run's progress
// says the file will be ready, rounded up, at least a second; without an estimate, the
// constant of retryAfter.
func TestInProgressRetry(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{&packager.InProgressError{ETA: 30 * time.Second}, 30},
		{&packager.InProgressError{ETA: 1500 * time.Millisecond}, 2},
		{&packager.InProgressError{ETA: time.Millisecond}, 1},
		{&packager.InProgressError{}, retryAfter(30 * time.Second)},
		{fmt.Errorf("wrapped: %w", &packager.InProgressError{ETA: 7 * time.Second}), 7},
		{packager.ErrInProgress, retryAfter(30 * time.Second)},
	} {
		if got := inProgressRetry(c.err, 30*time.Second); got != c.want {
			t.Errorf("%v: %d, want %d", c.err, got, c.want)
		}
	}
}
