package lease

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage/bucket"
)

// objects is an in-memory bucket with S3's conditional-write semantics (the real one,
// versitygw, is in packager/storage/bucket's tests and the fleet's integration tests).
type objects struct {
	mu   sync.Mutex
	data map[string][]byte
	etag map[string]string
	n    int
	// loseAnswer makes the next Replace apply and then fail as if its answer was lost.
	loseAnswer bool
	writes     int
}

func newObjects() *objects {
	return &objects{data: map[string][]byte{}, etag: map[string]string{}}
}

var errNetwork = errors.New("connection reset")

func (o *objects) Get(_ context.Context, key string) ([]byte, string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b, ok := o.data[key]
	if !ok {
		return nil, "", bucket.ErrNotExist
	}
	return b, o.etag[key], nil
}

func (o *objects) put(key string, b []byte) string {
	o.n++
	o.writes++
	o.data[key] = b
	o.etag[key] = `"` + strconv.Itoa(o.n) + `"`
	return o.etag[key]
}

func (o *objects) Create(_ context.Context, key string, b []byte) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.data[key]; ok {
		return "", bucket.ErrConflict
	}
	return o.put(key, b), nil
}

func (o *objects) Replace(_ context.Context, key string, b []byte, ifMatch string) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.data[key]; !ok {
		return "", bucket.ErrNotExist
	}
	if o.etag[key] != ifMatch {
		return "", bucket.ErrConflict
	}
	etag := o.put(key, b)
	if o.loseAnswer {
		o.loseAnswer = false
		return "", errNetwork
	}
	return etag, nil
}

func (o *objects) delete(key string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.data, key)
	delete(o.etag, key)
}

// clock replaces now with a clock the test moves.
type clock struct{ t time.Time }

func fakeClock(t *testing.T) *clock {
	c := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	old := now
	now = func() time.Time { return c.t }
	t.Cleanup(func() { now = old })
	return c
}

func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

const (
	key = "downloads/v/default.json"
	dur = 30 * time.Second
)

func inProgress() Doc {
	return Doc{Record: storage.Record{Video: "v", Type: "default", Status: storage.StatusInProgress, Origin: "http://o/v.m3u8"}}
}

// TestAcquireOnce: of many nodes creating one download at once, exactly one holds it.
func TestAcquireOnce(t *testing.T) {
	objs := newObjects()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []string
	for i := range 20 {
		wg.Go(func() {
			node := fmt.Sprintf("node%d", i)
			_, err := Acquire(context.Background(), objs, key, inProgress(), node, dur)
			switch {
			case err == nil:
				mu.Lock()
				won = append(won, node)
				mu.Unlock()
			case !errors.Is(err, bucket.ErrConflict):
				t.Errorf("%s: %v, want bucket.ErrConflict", node, err)
			}
		})
	}
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("holders: %v, want exactly one", won)
	}
	d, _, err := Read(context.Background(), objs, key)
	if err != nil {
		t.Fatal(err)
	}
	if d.Lease != (Lease{Holder: won[0], Generation: 1, Duration: dur}) || d.Record.Video != "v" {
		t.Errorf("object %+v", d)
	}
}

// TestRenewAndLapse: renewals publish progress and keep the claim valid; a holder that
// could not renew for the duration less the margin stops, and writes nothing more.
func TestRenewAndLapse(t *testing.T) {
	clk := fakeClock(t)
	objs := newObjects()
	ctx := context.Background()
	c, err := Acquire(ctx, objs, key, inProgress(), "a", dur)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		clk.advance(dur / 3)
		if !c.Valid() {
			t.Fatalf("renewal %d: not valid after a third of the duration", i)
		}
		if err := c.Renew(ctx, func(d *Doc) { d.Percent = float64(10 * (i + 1)) }); err != nil {
			t.Fatal(err)
		}
	}
	if d, _, _ := Read(ctx, objs, key); d.Percent != 50 || d.Lease.Holder != "a" {
		t.Errorf("after renewals: %+v", d)
	}
	// The bucket is unreachable for a while: the claim is valid until duration-margin.
	clk.advance(dur - Margin(dur) - time.Millisecond)
	if !c.Valid() {
		t.Fatal("invalid before duration less margin")
	}
	clk.advance(time.Millisecond)
	if c.Valid() {
		t.Fatal("still valid at duration less margin")
	}
	writes := objs.writes
	if err := c.Renew(ctx, nil); !errors.Is(err, ErrLost) {
		t.Errorf("renew after the lapse: %v, want ErrLost", err)
	}
	if objs.writes != writes {
		t.Error("a lapsed claim wrote")
	}
}

// TestTakeOver: a lease not renewed is taken over once its ETag was seen unchanged for
// the duration, one generation up; the old holder can neither renew nor publish; two
// nodes taking over at once: one wins.
func TestTakeOver(t *testing.T) {
	clk := fakeClock(t)
	objs := newObjects()
	ctx := context.Background()
	old, err := Acquire(ctx, objs, key, inProgress(), "a", dur)
	if err != nil {
		t.Fatal(err)
	}
	var watchers [2]Watcher
	seen, etag, err := Read(ctx, objs, key)
	if err != nil {
		t.Fatal(err)
	}
	for i := range watchers {
		if watchers[i].Observe(key, etag, seen.Lease.Duration) {
			t.Fatal("expired at first sight")
		}
	}
	clk.advance(dur - time.Millisecond)
	if watchers[0].Observe(key, etag, dur) {
		t.Fatal("expired before the duration")
	}
	// The holder stopped before anyone may take over.
	if old.Valid() {
		t.Fatal("holder still valid when the others are about to take over")
	}
	clk.advance(time.Millisecond)
	var wg sync.WaitGroup
	claims := make([]*Claim, 2)
	for i := range watchers {
		if !watchers[i].Observe(key, etag, dur) {
			t.Fatalf("watcher %d: not expired after the duration", i)
		}
		wg.Go(func() {
			c, err := TakeOver(ctx, objs, key, seen, etag, inProgress(), fmt.Sprintf("node%d", i), dur)
			if err != nil && !errors.Is(err, bucket.ErrConflict) {
				t.Errorf("take over %d: %v", i, err)
			}
			claims[i] = c
		})
	}
	wg.Wait()
	var winner *Claim
	for _, c := range claims {
		if c != nil {
			if winner != nil {
				t.Fatal("two nodes took the lease over")
			}
			winner = c
		}
	}
	if winner == nil || winner.Generation() != 2 {
		t.Fatalf("winner %+v, want generation 2", winner)
	}
	// The old holder, were it to try: its If-Match fails.
	old.sent = now()
	if err := old.Release(ctx, func(d *Doc) { d.Record.Status = storage.StatusReady; d.File = "files/v/default.1.mp4" }); !errors.Is(err, ErrLost) {
		t.Errorf("old holder's publish: %v, want ErrLost", err)
	}
	if err := winner.Release(ctx, func(d *Doc) { d.Record.Status = storage.StatusReady; d.File = "files/v/default.2.mp4" }); err != nil {
		t.Fatal(err)
	}
	d, _, _ := Read(ctx, objs, key)
	if d.File != "files/v/default.2.mp4" || d.Lease.Held() || d.Lease.Generation != 2 {
		t.Errorf("published %+v", d)
	}
}

// TestWatcherResets: a new ETag starts the wait again; Forget drops the sighting.
func TestWatcherResets(t *testing.T) {
	clk := fakeClock(t)
	var w Watcher
	w.Observe(key, `"1"`, dur)
	clk.advance(dur - time.Second)
	if w.Observe(key, `"2"`, dur) {
		t.Fatal("a renewed lease expired")
	}
	clk.advance(dur - time.Second)
	if w.Observe(key, `"2"`, dur) {
		t.Fatal("expired before the duration since its ETag was first seen")
	}
	w.Forget(key)
	clk.advance(time.Hour)
	if w.Observe(key, `"2"`, dur) {
		t.Fatal("expired at first sight after Forget")
	}
}

// TestWatcherBounded: a watcher never remembers more than maxSightings downloads, and
// drops the ones looked at least recently.
func TestWatcherBounded(t *testing.T) {
	clk := fakeClock(t)
	var w Watcher
	for i := range maxSightings + 10 {
		clk.advance(time.Millisecond)
		w.Observe(strconv.Itoa(i), "e", dur)
	}
	if n := len(w.seen); n > maxSightings {
		t.Fatalf("%d sightings kept", n)
	}
	if _, ok := w.seen[strconv.Itoa(maxSightings+9)]; !ok {
		t.Error("the latest sighting was dropped")
	}
	if _, ok := w.seen["0"]; ok {
		t.Error("the oldest sighting was kept")
	}
}

// TestLostAnswer: a write that landed but whose answer was lost is recognised when its
// retry fails its own If-Match; a write another node changed in between is lost.
func TestLostAnswer(t *testing.T) {
	fakeClock(t)
	objs := newObjects()
	ctx := context.Background()
	c, err := Acquire(ctx, objs, key, inProgress(), "a", dur)
	if err != nil {
		t.Fatal(err)
	}
	objs.loseAnswer = true
	set := func(d *Doc) { d.Percent = 40 }
	if err := c.Renew(ctx, set); !errors.Is(err, errNetwork) {
		t.Fatalf("first try: %v", err)
	}
	if err := c.Renew(ctx, set); err != nil {
		t.Fatalf("retry of a write that landed: %v", err)
	}
	if err := c.Renew(ctx, func(d *Doc) { d.Percent = 50 }); err != nil {
		t.Fatalf("next renewal: %v", err)
	}
	// Deleted (a DELETE on another node): the holder learns it at its next write.
	objs.delete(key)
	if err := c.Renew(ctx, nil); !errors.Is(err, ErrLost) {
		t.Errorf("renew of a deleted download: %v, want ErrLost", err)
	}
}
