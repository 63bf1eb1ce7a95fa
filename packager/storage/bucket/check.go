package bucket

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// CheckConditional checks, with a probe key of the caller's own (one per node, so that
// nodes starting together do not race on it), that the bucket honours conditional writes:
// a Create of an existing key must fail with ErrConflict, a Replace with the current ETag
// must succeed and one with a stale ETag must fail with ErrConflict. A bucket that ignores
// the headers gives an error wrapping ErrNoConditionalWrites (the node must refuse to
// load); a request that fails for another reason (unreachable, denied) gives that error.
// The probe key is deleted at the start and at the end.
func (b *Bucket) CheckConditional(ctx context.Context, probeKey string) (err error) {
	if err := b.Delete(ctx, probeKey); err != nil {
		return err
	}
	defer func() {
		// Clean up even when ctx is done; a leftover probe is harmless (deleted next time).
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if derr := b.Delete(cctx, probeKey); derr != nil && err == nil {
			err = derr
		}
	}()
	stamp := time.Now().UTC().Format(time.RFC3339Nano)
	first, err := b.Create(ctx, probeKey, []byte("probe 1 "+stamp))
	if err != nil {
		return err
	}
	refuse := func(what string) error {
		return fmt.Errorf("%w: bucket %q, probe key %q: %s", ErrNoConditionalWrites, b.name, b.key(probeKey), what)
	}
	switch _, err := b.Create(ctx, probeKey, []byte("probe 2 "+stamp)); {
	case err == nil:
		return refuse("a second create with If-None-Match: * succeeded")
	case !errors.Is(err, ErrConflict):
		return err
	}
	second, err := b.Replace(ctx, probeKey, []byte("probe 3 "+stamp), first)
	if errors.Is(err, ErrConflict) {
		// The ETag the server returned for the first create does not match its own object:
		// If-Match cannot work on this bucket.
		return refuse("a replace with If-Match and the current ETag was refused")
	}
	if err != nil {
		return err
	}
	if second == first {
		return refuse("a replace with different bytes kept the same ETag")
	}
	switch _, err := b.Replace(ctx, probeKey, []byte("probe 4 "+stamp), first); {
	case err == nil:
		return refuse("a replace with If-Match and a stale ETag succeeded")
	case !errors.Is(err, ErrConflict):
		return err
	}
	return nil
}
