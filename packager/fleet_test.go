package packager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager/lease"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage/bucket"
)

// fleetOf starts n Managers sharing one bucket of a real S3 server (versitygw), each
// with its own local cache. Leases are short, so that takeovers happen within a test.
func fleetOf(t *testing.T, n int, s Settings) ([]*Manager, *bucket.Bucket) {
	t.Helper()
	endpoint, name, ak, sk := testutil.StartS3(t)
	b, err := bucket.New(bucket.Config{Endpoint: endpoint, Bucket: name, AccessKey: ak, SecretKey: sk, PathStyle: true, Prefix: "fleet"})
	if err != nil {
		t.Fatal(err)
	}
	var ms []*Manager
	for i := range n {
		cache, err := storage.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		m := NewFleetManager(cache, s, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Named(fmt.Sprint("node", i)),
			Fleet{Bucket: b, Node: fmt.Sprint("node", i), Lease: 1500 * time.Millisecond, Staleness: 200 * time.Millisecond})
		t.Cleanup(func() { m.Destruct() })
		ms = append(ms, m)
	}
	return ms, b
}

// read returns the whole packaged file of k as m delivers it.
func read(t *testing.T, m *Manager, k storage.Key) ([]byte, State) {
	t.Helper()
	f, st, err := m.Open(context.Background(), k)
	if err != nil {
		t.Fatalf("open %v: %v", k, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read %v: %v", k, err)
	}
	return b, st
}

// waitFor polls m's state of k until it is not in progress.
func waitFor(t *testing.T, m *Manager, k storage.Key) State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, ok := m.Wait(ctx, k)
	if !ok || st.Status == storage.StatusInProgress {
		t.Fatalf("%v: %+v (exists %v) after a minute", k, st, ok)
	}
	return st
}

// TestFleetOnce: the same download created on every instance at once is packaged once
// (each segment fetched once from the origin), and every instance shows it ready with
// the same ETag and delivers the same bytes, from the bucket first, then from its own
// copy.
func TestFleetOnce(t *testing.T) {
	o := newDemo(t, "v")
	ms, _ := fleetOf(t, 3, Settings{MaxJobs: 2, Concurrency: 2})
	k := storage.Key{Video: "v", Type: "default"}
	var wg sync.WaitGroup
	for i := range 9 {
		m := ms[i%len(ms)]
		wg.Go(func() {
			if _, err := m.Create(context.Background(), k, o.URL+"/v/master.m3u8"); err != nil {
				t.Errorf("create: %v", err)
			}
		})
	}
	wg.Wait()
	var want []byte
	var etag string
	for i, m := range ms {
		st := waitFor(t, m, k)
		if st.Status != storage.StatusReady {
			t.Fatalf("node%d: %+v", i, st)
		}
		b, st := read(t, m, k)
		if want == nil {
			want, etag = b, st.ETag
		} else if !bytes.Equal(b, want) || st.ETag != etag {
			t.Errorf("node%d delivers %d bytes (ETag %s), node0 %d (ETag %s)", i, len(b), st.ETag, len(want), etag)
		}
	}
	for path, n := range o.Counts() {
		if strings.HasSuffix(path, ".ts") && n != 1 {
			t.Errorf("%s fetched %d times", path, n)
		}
	}
	// The copies made while delivering from the bucket are delivered the same.
	for i, m := range ms {
		deadline := time.Now().Add(10 * time.Second)
		for {
			m.mu.Lock()
			cached := m.downloads[k].fleet.cached
			m.mu.Unlock()
			if cached || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if b, _ := read(t, m, k); !bytes.Equal(b, want) {
			t.Errorf("node%d: its local copy differs", i)
		}
	}
}

// TestFleetDelete: a download deleted on one instance is gone on the others within the
// staleness bound, files included; created again, it is packaged again.
func TestFleetDelete(t *testing.T) {
	o := newDemo(t, "v")
	ms, b := fleetOf(t, 2, Settings{MaxJobs: 1})
	k := storage.Key{Video: "v", Type: "default"}
	kh := storage.Key{Video: "v", Type: "144p"} // a height type: not in a fixed list
	for _, k := range []storage.Key{k, kh} {
		if _, err := ms[0].Create(context.Background(), k, o.URL+"/v/master.m3u8"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ms[0], k)
	}
	// The other instance lists both, never having heard of them.
	states, err := ms[1].List(context.Background(), "v")
	if err != nil || len(states) != 2 || states[0].Type != "default" || states[1].Type != "144p" {
		t.Fatalf("node1 lists %+v, %v; want default and 144p", states, err)
	}
	read(t, ms[1], k)
	found, err := ms[1].Delete(context.Background(), "v")
	if err != nil || !found {
		t.Fatalf("delete: %v, %v", found, err)
	}
	time.Sleep(ms[0].fleet.conf().Staleness)
	if _, ok, err := ms[0].State(context.Background(), k); ok || err != nil {
		t.Errorf("after the delete on node1, node0 has it: %v, %v", ok, err)
	}
	if _, _, err := ms[0].Open(context.Background(), k); !errors.Is(err, ErrNotCreated) {
		t.Errorf("open after the delete: %v", err)
	}
	keys, err := b.Keys(context.Background(), "")
	if err != nil || len(keys) != 0 {
		t.Errorf("bucket after the delete: %v, %v", keys, err)
	}
}

// TestFleetTakeOver: an instance that stops while packaging (its lease is not renewed)
// has its download taken over by another, which completes it; the result is the same
// file as an uninterrupted run's.
func TestFleetTakeOver(t *testing.T) {
	o := newDemo(t, "v", "ref")
	ms, _ := fleetOf(t, 2, Settings{MaxJobs: 1})
	ref := create(t, ms[1], o, "ref")
	o.HoldSegmentsAfter(0)
	k := storage.Key{Video: "v", Type: "default"}
	if _, err := ms[0].Create(context.Background(), k, o.URL+"/v/master.m3u8"); err != nil {
		t.Fatal(err)
	}
	<-o.Held
	ms[0].Destruct() // as a crash: the lease stays, unrenewed
	o.Release()
	start := time.Now()
	st := waitFor(t, ms[1], k)
	if st.Status != storage.StatusReady {
		t.Fatalf("taken over: %+v", st)
	}
	t.Logf("taken over and packaged in %v", time.Since(start))
	refBytes, _ := read(t, ms[1], ref.Key())
	got, _ := read(t, ms[1], k)
	if !bytes.Equal(got, refBytes) {
		t.Errorf("taken-over file: %d bytes, an uninterrupted run's %d", len(got), len(refBytes))
	}
	// The ETag is the one of v packaged in one go (that of ref differs: its URL does).
	res, err := Package(context.Background(), o.URL+"/v/master.m3u8", filepath.Join(t.TempDir(), "v.mp4"), PackageOptions{})
	if err != nil || st.ETag != res.ETag {
		t.Errorf("taken-over file's ETag %s, v packaged in one go: %s (%v)", st.ETag, res.ETag, err)
	}
}

// TestFleetUnchecked: an instance whose bucket did not answer at start answers
// ErrUnreachable (503) until it has checked the bucket's conditional writes in the
// background, then works; a bucket that stops answering mid-run leaves ready downloads
// with a local copy delivered.
func TestFleetUnchecked(t *testing.T) {
	o := newDemo(t, "v")
	s3 := testutil.StartS3Server(t)
	b, err := bucket.New(bucket.Config{Endpoint: s3.Endpoint, Bucket: s3.Bucket, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	s3.Stop()
	cache, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := NewFleetManager(cache, Settings{MaxJobs: 1}, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
		Fleet{Bucket: b, Node: "n", Lease: 1500 * time.Millisecond, Staleness: 200 * time.Millisecond, Unchecked: true})
	defer m.Destruct()
	k := storage.Key{Video: "v", Type: "default"}
	if _, err := m.Create(context.Background(), k, o.URL+"/v/master.m3u8"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("create before the bucket answers: %v, want ErrUnreachable", err)
	}
	s3.Start()
	deadline := time.Now().Add(30 * time.Second)
	for !m.fleet.checked.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the bucket was not checked 30 s after it came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := m.Create(context.Background(), k, o.URL+"/v/master.m3u8"); err != nil {
		t.Fatal(err)
	}
	if waitFor(t, m, k).Status != storage.StatusReady {
		t.Fatal("not ready")
	}
	want, _ := read(t, m, k)
	s3.Stop()
	time.Sleep(m.fleet.conf().Staleness) // what is known of it is stale now: the bucket is asked, and does not answer
	if got, _ := read(t, m, k); !bytes.Equal(got, want) {
		t.Error("the local copy, delivered while the bucket is away, differs")
	}
	if _, err := m.Create(context.Background(), storage.Key{Video: "w", Type: "default"}, o.URL+"/w/master.m3u8"); !errors.Is(err, ErrUnreachable) {
		t.Errorf("create while the bucket is away: %v, want ErrUnreachable", err)
	}
}

// TestFleetRace: a holder whose renewals do not get through (a test hook drops them)
// while its job goes on loses the lease to another instance; both runs package the
// video, and exactly one publishes: the bucket holds one file, the taker's, and the
// download is ready with it.
func TestFleetRace(t *testing.T) {
	o := newDemo(t, "v")
	ms, b := fleetOf(t, 2, Settings{MaxJobs: 1})
	var mu sync.Mutex
	mute := map[string]bool{"node0": true}
	skipRenewal = func(node string) bool {
		mu.Lock()
		defer mu.Unlock()
		return mute[node]
	}
	t.Cleanup(func() { skipRenewal = nil })
	o.HoldSegmentsAfter(0)
	k := storage.Key{Video: "v", Type: "default"}
	if _, err := ms[0].Create(context.Background(), k, o.URL+"/v/master.m3u8"); err != nil {
		t.Fatal(err)
	}
	<-o.Held
	ms[0].mu.Lock()
	first := ms[0].downloads[k].done // node0's job
	ms[0].mu.Unlock()
	// node1 looks at it until the lease has expired and takes it over.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, _, err := ms[1].State(context.Background(), k); err != nil {
			t.Fatal(err)
		}
		ms[1].mu.Lock()
		d := ms[1].downloads[k]
		taken := d != nil && d.fleet.hold != nil
		ms[1].mu.Unlock()
		if taken {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node1 did not take the download over")
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	mute["node0"] = false
	mu.Unlock()
	o.Release()
	st := waitFor(t, ms[1], k)
	if st.Status != storage.StatusReady {
		t.Fatalf("after the race: %+v", st)
	}
	select { // node0's run packages the video too, and tries to publish it
	case <-first:
	case <-time.After(time.Minute):
		t.Fatal("node0's run did not end")
	}
	keys, err := b.Keys(context.Background(), "files/")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != fileKey(k, 2) {
		t.Errorf("files in the bucket: %v, want only %v", keys, fileKey(k, 2))
	}
	doc, _, err := ms[1].fleet.read(context.Background(), k)
	if err != nil || doc.File != fileKey(k, 2) || doc.Lease.Generation != 2 {
		t.Errorf("the download's object: %+v, %v", doc, err)
	}
}

// TestFleetOnDemand: an on-demand creation of a video the origin lacks is refused on the
// instance that asked, and leaves nothing in the bucket; one the origin has is packaged
// once and shown ready on the other instance.
func TestFleetOnDemand(t *testing.T) {
	o := newDemo(t, "v")
	ms, b := fleetOf(t, 2, Settings{MaxJobs: 1})
	missing := storage.Key{Video: "nothere", Type: "default"}
	if _, err := ms[0].CreateOnDemand(context.Background(), missing, o.URL+"/nothere/master.m3u8"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("on-demand creation of a missing video: %v, want ErrNotFound", err)
	}
	ms[0].flush()
	if keys, err := b.Keys(context.Background(), ""); err != nil || len(keys) != 0 {
		t.Errorf("bucket after a refused creation: %v, %v", keys, err)
	}
	if err := ms[0].Refused(missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("the refusal is not remembered: %v", err)
	}
	k := storage.Key{Video: "v", Type: "default"}
	if _, err := ms[0].CreateOnDemand(context.Background(), k, o.URL+"/v/master.m3u8"); err != nil {
		t.Fatal(err)
	}
	if st := waitFor(t, ms[1], k); st.Status != storage.StatusReady {
		t.Fatalf("on node1: %+v", st)
	}
}

// TestFleetReconfigure: a reload's fleet settings (Settings.Fleet) are in force for the
// claims made after it — another node name, another lease — and the previous ones come
// back when that config is released.
func TestFleetReconfigure(t *testing.T) {
	o := newDemo(t, "v", "w")
	ms, b := fleetOf(t, 1, Settings{MaxJobs: 1})
	m := ms[0]
	before := *m.fleet.conf()
	renamed := before
	renamed.Node, renamed.Lease = "renamed", 7*time.Second
	m.Configure(Settings{MaxJobs: 1, Fleet: &before}) // the running config, as the module registers it
	release := m.Configure(Settings{MaxJobs: 1, Fleet: &renamed})
	o.HoldSegmentsAfter(0)
	k := storage.Key{Video: "v", Type: "default"}
	if _, err := m.Create(context.Background(), k, o.URL+"/v/master.m3u8"); err != nil {
		t.Fatal(err)
	}
	<-o.Held
	doc, _, err := lease.Read(context.Background(), b, docKey(k))
	if err != nil {
		t.Fatal(err)
	}
	if doc.Lease.Holder != "renamed" || doc.Lease.Duration != 7*time.Second {
		t.Errorf("lease after the reload: %+v, want holder renamed for 7s", doc.Lease)
	}
	o.Release()
	waitFor(t, m, k)
	release()
	if got := *m.fleet.conf(); got.Node != before.Node || got.Lease != before.Lease {
		t.Errorf("after the release: node %q lease %v, want %q %v", got.Node, got.Lease, before.Node, before.Lease)
	}
}

// TestFleetCounts: every instance counts the downloads held anywhere in the fleet (their
// lease markers); none once they are ready.
func TestFleetCounts(t *testing.T) {
	o := newDemo(t, "v")
	ms, _ := fleetOf(t, 2, Settings{MaxJobs: 1})
	o.HoldSegmentsAfter(0)
	k := storage.Key{Video: "v", Type: "default"}
	if _, err := ms[0].Create(context.Background(), k, o.URL+"/v/master.m3u8"); err != nil {
		t.Fatal(err)
	}
	<-o.Held
	if c := ms[1].FleetCounts(context.Background()); c == nil || c.InProgress != 1 || c.Error != "" {
		t.Errorf("while node0 packages: %+v, want 1 in progress", c)
	}
	o.Release()
	waitFor(t, ms[0], k)
	if c := ms[1].FleetCounts(context.Background()); c == nil || c.InProgress != 0 {
		t.Errorf("once ready: %+v, want none in progress", c)
	}
}

// TestFleetAbsent: an id the bucket has no object for is remembered absent for the
// staleness bound, so that requests for ids nobody created do not each read the bucket
// (here: the bucket stops answering, and the id is still known absent until the bound).
func TestFleetAbsent(t *testing.T) {
	s3 := testutil.StartS3Server(t)
	b, err := bucket.New(bucket.Config{Endpoint: s3.Endpoint, Bucket: s3.Bucket, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	cache, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := NewFleetManager(cache, Settings{MaxJobs: 1}, zap.NewNop(),
		Fleet{Bucket: b, Node: "n", Lease: 1500 * time.Millisecond, Staleness: 5 * time.Second})
	defer m.Destruct()
	k := storage.Key{Video: "nobody", Type: "default"}
	if _, ok, err := m.State(context.Background(), k); ok || err != nil {
		t.Fatalf("first look: %v, %v", ok, err)
	}
	s3.Stop()
	if _, ok, err := m.State(context.Background(), k); ok || err != nil {
		t.Errorf("within the bound, with the bucket away: %v, %v; want not found, from memory", ok, err)
	}
	clock := now
	now = func() time.Time { return clock().Add(6 * time.Second) }
	t.Cleanup(func() { now = clock })
	if _, _, err := m.State(context.Background(), k); !errors.Is(err, ErrUnreachable) {
		t.Errorf("past the bound: %v, want ErrUnreachable (the bucket is read again)", err)
	}
}
