package bucket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"

	"github.com/minio/minio-go/v7"
)

// Conditional headers: minio-go v7.4.1's PutObjectOptions.SetMatchETagExcept("*") sends
// `If-None-Match: *` and SetMatchETag(etag) sends `If-Match: "<etag>"` (both set the
// options' custom headers, which PutObject copies onto the request; the doc comments call
// them MinIO extensions, but they are the standard headers AWS S3, R2 and versitygw honour
// on PutObject). DisableMultipart keeps each write one PutObject request, so the condition
// applies to the write itself rather than to a multipart upload's completion.

// Create writes data under key only if no object is there (`If-None-Match: *`) and returns
// the new object's ETag. An existing object, or a concurrent Create that won, gives
// ErrConflict.
func (b *Bucket) Create(ctx context.Context, key string, data []byte) (etag string, err error) {
	opts := minio.PutObjectOptions{DisableMultipart: true}
	opts.SetMatchETagExcept("*")
	return b.put(ctx, "create", key, data, opts)
}

// Replace writes data under key only if the object's ETag is still ifMatch
// (`If-Match: "<ifMatch>"`) and returns the new ETag. A changed object gives ErrConflict;
// a deleted one gives an error that is both ErrConflict and ErrNotExist.
func (b *Bucket) Replace(ctx context.Context, key string, data []byte, ifMatch string) (etag string, err error) {
	ifMatch = strings.Trim(ifMatch, `"`)
	if ifMatch == "" || ifMatch == "*" {
		return "", fmt.Errorf("bucket replace %q: an ETag to match is required", key)
	}
	opts := minio.PutObjectOptions{DisableMultipart: true}
	opts.SetMatchETag(ifMatch)
	return b.put(ctx, "replace", key, data, opts)
}

func (b *Bucket) put(ctx context.Context, op, key string, data []byte, opts minio.PutObjectOptions) (string, error) {
	opts.ContentType = "application/octet-stream"
	info, err := b.client.PutObject(ctx, b.name, b.key(key), bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		return "", b.fail(op, key, err)
	}
	return info.ETag, nil
}

// Get reads a small object (at most MaxGetSize bytes, else ErrTooLarge) and its ETag.
// A missing object gives ErrNotExist.
func (b *Bucket) Get(ctx context.Context, key string) (data []byte, etag string, err error) {
	rc, info, _, err := b.core.GetObject(ctx, b.name, b.key(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, "", b.fail("get", key, err)
	}
	defer rc.Close()
	if info.Size > MaxGetSize {
		return nil, "", b.fail("get", key, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, info.Size, MaxGetSize))
	}
	data, err = io.ReadAll(io.LimitReader(rc, MaxGetSize+1))
	if err != nil {
		return nil, "", b.fail("get", key, err)
	}
	if len(data) > MaxGetSize {
		return nil, "", b.fail("get", key, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, MaxGetSize))
	}
	return data, info.ETag, nil
}

// Delete removes the object under key. Deleting a missing object is not an error (S3
// answers 204 either way).
func (b *Bucket) Delete(ctx context.Context, key string) error {
	return b.fail("delete", key, b.client.RemoveObject(ctx, b.name, b.key(key), minio.RemoveObjectOptions{}))
}

// List yields the keys (relative to the bucket's prefix, as the other methods take them)
// that start with prefix, in lexical order, at any depth. A failed listing yields its error
// last. Breaking out of the loop stops the listing.
func (b *Bucket) List(ctx context.Context, prefix string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel() // stops the client's listing goroutine on an early break
		for obj := range b.client.ListObjects(ctx, b.name, minio.ListObjectsOptions{Prefix: b.key(prefix), Recursive: true}) {
			if obj.Err != nil {
				yield("", b.fail("list", prefix, obj.Err))
				return
			}
			if !yield(strings.TrimPrefix(obj.Key, b.prefix), nil) {
				return
			}
		}
	}
}

// Keys is List gathered into a slice.
func (b *Bucket) Keys(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	for k, err := range b.List(ctx, prefix) {
		if err != nil {
			return keys, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// IsConflict reports whether err is a lost conditional write (ErrConflict).
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) }

// IsNotExist reports whether err is a missing object (ErrNotExist).
func IsNotExist(err error) bool { return errors.Is(err, ErrNotExist) }
