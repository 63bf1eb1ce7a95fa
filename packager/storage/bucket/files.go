package bucket

import (
	"context"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"
)

// Upload writes size bytes of r (a finished local file) under key as one object and
// returns its ETag. From Config.PartSize up it is a multipart upload of parts of that size
// (the last one smaller; S3 wants ≥ 5 MiB for the others), two parts in flight; each part
// is streamed from r through an io.SectionReader and signed with the chunked streaming
// signature, so memory stays bounded whatever the size (minio-go's ReaderAt path: no part
// buffer, no second read of the file). A failed multipart upload is aborted.
//
// Upload is unconditional: the fleet protocol uploads under a key of its own lease
// generation and publishes it with a conditional Replace of the record.
func (b *Bucket) Upload(ctx context.Context, key string, r io.ReaderAt, size int64) (etag string, err error) {
	if size < 0 {
		return "", fmt.Errorf("bucket upload %q: negative size %d", key, size)
	}
	info, err := b.client.PutObject(ctx, b.name, b.key(key), io.NewSectionReader(r, 0, size), size, minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		PartSize:    uint64(b.partSize),
		NumThreads:  uploadThreads,
	})
	if err != nil {
		return "", b.fail("upload", key, err)
	}
	if info.Size != size {
		return "", fmt.Errorf("bucket upload %q: %d bytes stored, %d sent", key, info.Size, size)
	}
	return info.ETag, nil
}

// Open returns n bytes of the object under key from offset off (a ranged GET), or all
// bytes from off when n < 0. The range must start inside the object (else the server
// answers 416, an error); a range past the end is cut to the end. A missing object gives
// ErrNotExist.
func (b *Bucket) Open(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if off < 0 {
		return nil, fmt.Errorf("bucket open %q: negative offset %d", key, off)
	}
	if n == 0 {
		return io.NopCloser(eofReader{}), nil
	}
	var opts minio.GetObjectOptions
	switch {
	case n > 0:
		if err := opts.SetRange(off, off+n-1); err != nil {
			return nil, fmt.Errorf("bucket open %q: %w", key, err)
		}
	case off > 0: // to the end: minio-go writes bytes=off- for (off, 0) when off > 0
		if err := opts.SetRange(off, 0); err != nil {
			return nil, fmt.Errorf("bucket open %q: %w", key, err)
		}
	}
	rc, _, _, err := b.core.GetObject(ctx, b.name, b.key(key), opts)
	if err != nil {
		return nil, b.fail("open", key, err)
	}
	return rc, nil
}

// Size returns the size and ETag of the object under key (a HEAD request).
func (b *Bucket) Size(ctx context.Context, key string) (size int64, etag string, err error) {
	info, err := b.client.StatObject(ctx, b.name, b.key(key), minio.StatObjectOptions{})
	if err != nil {
		return 0, "", b.fail("stat", key, err)
	}
	return info.Size, info.ETag, nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
