package packager

import "testing"

// TestScheduler: downloads start in arrival order, never more than maxJobs at once;
// a slot freed by done goes to the next one waiting; a download removed from the queue
// never starts; downloads being created count as waiting.
func TestScheduler(t *testing.T) {
	var q scheduler
	a, b, c := new(download), new(download), new(download)
	if !q.idle(1) {
		t.Fatal("an empty scheduler is not idle")
	}
	for _, d := range []*download{a, b, c} {
		q.push(d)
	}
	q.creating = 1
	if got := q.waiting(); got != 4 {
		t.Errorf("waiting %d, want 4 (3 queued, 1 being created)", got)
	}
	if got := q.next(1); got != a {
		t.Fatalf("next = %p, want the first pushed", got)
	}
	if got := q.next(1); got != nil {
		t.Fatalf("a second job started with max_jobs 1")
	}
	if q.idle(1) {
		t.Error("idle with its one slot taken")
	}
	if !q.remove(b) || q.remove(b) {
		t.Error("remove: b was waiting once")
	}
	q.done()
	if got := q.next(1); got != c {
		t.Fatalf("after done, next = %p, want c (b was removed)", got)
	}
	if got := q.next(2); got != nil {
		t.Error("next with nothing waiting")
	}
	q.done()
	q.jobs.Wait() // every job handed out was done
	if q.running != 0 || q.waiting() != 1 {
		t.Errorf("running %d, waiting %d; want 0 and 1 (the one being created)", q.running, q.waiting())
	}
}
