package packager

import (
	"context"
	"sync"

	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
)

// scheduler is the job queue: downloads wait in arrival order for one of MaxJobs slots,
// and MaxQueue bounds how many may wait. It only counts and orders; the Manager starts
// the jobs it hands out. Its fields are guarded by Manager.mu.
type scheduler struct {
	queue    []*download // waiting for a slot, in arrival order
	creating int         // downloads created for the queue whose record is being saved
	running  int
	jobs     sync.WaitGroup
}

// waiting is the number of downloads that wait for a job, which MaxQueue bounds.
func (q *scheduler) waiting() int { return len(q.queue) + q.creating }

// idle reports whether a new download would start at once with maxJobs slots.
func (q *scheduler) idle(maxJobs int) bool { return q.running < maxJobs && len(q.queue) == 0 }

// push queues d.
func (q *scheduler) push(d *download) { q.queue = append(q.queue, d) }

// remove drops d from the queue and reports whether it was waiting there.
func (q *scheduler) remove(d *download) bool {
	for i, w := range q.queue {
		if w == d {
			q.queue = append(q.queue[:i], q.queue[i+1:]...)
			return true
		}
	}
	return false
}

// next takes the first waiting download when one of maxJobs slots is free, counting it
// as running until done; nil when none may start.
func (q *scheduler) next(maxJobs int) *download {
	if q.running >= maxJobs || len(q.queue) == 0 {
		return nil
	}
	d := q.queue[0]
	q.queue = q.queue[1:]
	q.running++
	q.jobs.Add(1)
	return d
}

// done ends a job that next handed out; dispatch should follow.
func (q *scheduler) done() {
	q.running--
	q.jobs.Done()
}

// enqueue queues d's job and starts what the slots allow. Call with m.mu held.
func (m *Manager) enqueue(d *download) {
	d.rec.Status = storage.StatusInProgress
	d.rec.ErrorCode, d.rec.ErrorText = "", ""
	d.percent = 0
	if d.done == nil {
		d.done = make(chan struct{})
	}
	m.sched.push(d)
	m.dispatch()
}

// unqueue drops d from the queue if it waits there. Call with m.mu held.
func (m *Manager) unqueue(d *download) {
	if m.sched.remove(d) {
		close(d.done)
	}
}

// dispatch starts queued jobs while slots are free. Call with m.mu held.
func (m *Manager) dispatch() {
	for m.ctx.Err() == nil {
		d := m.sched.next(m.settings.MaxJobs)
		if d == nil {
			return
		}
		ctx, cancel := context.WithCancel(m.ctx)
		d.cancel = cancel
		d.resolved = make(chan struct{}) // closed by the job once it has read the playlists
		go m.run(ctx, d, m.client, m.settings, m.selectOptions(d.rec.Key()))
	}
}
