// Package lease lets a fleet of packagers that share one bucket package each download
// once. Every download has one object in the bucket holding its record, its lease
// (holder, generation, duration) and its progress, changed only by conditional writes:
// created with If-None-Match: *, then replaced with If-Match on the ETag last read. S3
// has no atomic check across two keys; one object per download needs none.
//
// The holder renews its lease every third of the duration and stops its run once the
// time since it sent its last successful write reaches the duration less a margin. Other
// nodes never compare wall clocks: a lease has expired when a node has seen the object
// keep one ETag for the whole duration on its own monotonic clock (Watcher). The first
// sighting of an ETag comes after the holder sent the write that made it, so the holder
// has stopped by the time anyone may take over. A write that lost its lease fails its
// If-Match, whatever the clocks say: a run that lost its lease can never publish.
package lease

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage/bucket"
)

// now is the clock seam; its readings carry Go's monotonic clock.
var now = time.Now

// ErrLost is returned by the writes of a Claim that no longer holds its lease: the
// object changed under it (taken over, deleted) or its renewals lapsed.
var ErrLost = errors.New("lease lost")

// Objects is the bucket as the protocol needs it: small objects with ETags, changed by
// conditional writes. Errors match bucket.ErrConflict when a condition fails (HTTP 412,
// or AWS's 409 ConditionalRequestConflict) and bucket.ErrNotExist for a missing object.
// *bucket.Bucket implements it.
type Objects interface {
	Get(ctx context.Context, key string) (data []byte, etag string, err error)
	Create(ctx context.Context, key string, data []byte) (etag string, err error)
	Replace(ctx context.Context, key string, data []byte, ifMatch string) (etag string, err error)
}

// Doc is the object of one download.
type Doc struct {
	Record storage.Record `json:"record"`
	Lease  Lease          `json:"lease"`
	// Percent is the holder's progress, published with its renewals.
	Percent float64 `json:"percent,omitempty"`
	// File is the key of the packaged file once ready: it carries the generation of
	// the lease that published it.
	File string `json:"file,omitempty"`
	// FileETag is the bucket's ETag of File: reads of it are conditional on it.
	FileETag string `json:"file_etag,omitempty"`
}

// Lease says who packages a download. A download that is ready or failed has no holder.
type Lease struct {
	Holder     string `json:"holder,omitempty"`
	Generation int64  `json:"generation"`
	// Duration is how long the holder may go without renewing: the holder's promise,
	// which the others wait out before taking over.
	Duration time.Duration `json:"duration"`
}

// Held reports whether the lease has a holder.
func (l Lease) Held() bool { return l.Holder != "" }

// Read reads key's object: its Doc and ETag.
func Read(ctx context.Context, objs Objects, key string) (Doc, string, error) {
	b, etag, err := objs.Get(ctx, key)
	if err != nil {
		return Doc{}, "", err
	}
	var d Doc
	if err := json.Unmarshal(b, &d); err != nil {
		return Doc{}, "", fmt.Errorf("download object %s: %w", key, err)
	}
	return d, etag, nil
}

// Claim is a lease this node holds on one download's object.
type Claim struct {
	objs   Objects
	key    string
	doc    Doc    // as last written
	etag   string // of the last write
	sent   time.Time
	margin time.Duration
}

// Margin is how long before its lease runs out a holder stops: room for the time its
// last renewal took to land and for clocks that run at slightly different rates.
func Margin(d time.Duration) time.Duration { return d / 6 }

// Acquire creates key's object with d, leased to holder for duration, as generation 1;
// it fails with bucket.ErrConflict when the object exists (read it and obey).
func Acquire(ctx context.Context, objs Objects, key string, d Doc, holder string, duration time.Duration) (*Claim, error) {
	d.Lease = Lease{Holder: holder, Generation: 1, Duration: duration}
	c := &Claim{objs: objs, key: key, margin: Margin(duration)}
	sent := now()
	b, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	etag, err := objs.Create(ctx, key, b)
	if err != nil {
		return nil, err
	}
	c.doc, c.etag, c.sent = d, etag, sent
	return c, nil
}

// TakeOver replaces the object whose ETag was seen as etag (the lease it held has
// expired, or it has none: a failed or evicted download packaged again) with d leased to
// holder, one generation up. It fails with bucket.ErrConflict when the object changed
// since, and bucket.ErrNotExist when it was deleted.
func TakeOver(ctx context.Context, objs Objects, key string, seen Doc, etag string, d Doc, holder string, duration time.Duration) (*Claim, error) {
	d.Lease = Lease{Holder: holder, Generation: seen.Lease.Generation + 1, Duration: duration}
	c := &Claim{objs: objs, key: key, margin: Margin(duration)}
	sent := now()
	b, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	etag, err = objs.Replace(ctx, key, b, etag)
	if err != nil {
		return nil, err
	}
	c.doc, c.etag, c.sent = d, etag, sent
	return c, nil
}

// Doc returns the object as this claim last wrote it.
func (c *Claim) Doc() Doc { return c.doc }

// Generation is the lease's generation: files uploaded under it carry it.
func (c *Claim) Generation() int64 { return c.doc.Lease.Generation }

// Valid reports whether the holder may go on: the time since it sent its last
// successful write is short of the lease duration less the margin (Deadline).
func (c *Claim) Valid() bool { return now().Before(c.Deadline()) }

// Deadline is when the holder must have stopped unless it renews before: the lease
// duration less the margin after it sent its last successful write.
func (c *Claim) Deadline() time.Time { return c.sent.Add(c.doc.Lease.Duration - c.margin) }

// Renew writes the object again with what update changes (progress), which renews the
// lease. A claim that is no longer Valid, or whose object changed or went, returns
// ErrLost and must stop; other errors (the bucket unreachable) leave it to try again
// while it is Valid.
func (c *Claim) Renew(ctx context.Context, update func(*Doc)) error {
	return c.write(ctx, update, false)
}

// Release writes the download's outcome (update sets the record, the file) and gives
// up the lease: the object has no holder any more. It returns ErrLost as Renew does:
// then the outcome was not written, and what it names must be removed.
func (c *Claim) Release(ctx context.Context, update func(*Doc)) error {
	return c.write(ctx, update, true)
}

func (c *Claim) write(ctx context.Context, update func(*Doc), release bool) error {
	if !c.Valid() {
		return fmt.Errorf("%w: not renewed for %v", ErrLost, now().Sub(c.sent).Round(time.Millisecond))
	}
	d := c.doc
	if update != nil {
		update(&d)
	}
	d.Lease = c.doc.Lease // not the update's to change
	if release {
		d.Lease.Holder = ""
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	sent := now()
	etag, err := c.objs.Replace(ctx, c.key, b, c.etag)
	if errors.Is(err, bucket.ErrConflict) {
		// A write retried after its answer was lost fails its own If-Match: the object
		// holding exactly what was written is this write's. When that attempt was sent
		// is not known, so the lease counts from the write before (stopping early is
		// safe, late is not).
		if etag, err = c.landed(ctx, b); err != nil {
			return err
		}
		sent = c.sent
	}
	switch {
	case errors.Is(err, bucket.ErrNotExist):
		return fmt.Errorf("%w: %v", ErrLost, err)
	case err != nil:
		return err
	}
	c.doc, c.etag, c.sent = d, etag, sent
	return nil
}

// landed reads the object after a conflict and returns its ETag if it holds b, else
// ErrLost.
func (c *Claim) landed(ctx context.Context, b []byte) (string, error) {
	got, etag, err := c.objs.Get(ctx, c.key)
	switch {
	case errors.Is(err, bucket.ErrNotExist):
		return "", fmt.Errorf("%w: the download's object was deleted", ErrLost)
	case err != nil:
		return "", err
	case !bytes.Equal(got, b):
		return "", fmt.Errorf("%w: the download's object was changed by another node", ErrLost)
	}
	return etag, nil
}
