package bucket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// ErrChanged: the object a Reader was made for is no longer there as it was — a GET found
// another ETag (or the server refused the If-Match with 412), another size, or fewer bytes
// than announced. A vanished object gives an error that is both ErrChanged and ErrNotExist.
// Either way the Reader returns no byte of another version.
var ErrChanged = errors.New("bucket: object changed or vanished while it was read")

// Reader reads one object of the bucket for delivery, as a storage.File: http.ServeContent
// can serve it with Range and If-Range. It sends no request until the first Read; a Read
// opens one GET from its offset to the end of the object (a ranged GET when the offset is
// not 0) and keeps reading that body while reads are sequential. A Seek to another offset
// closes the body, and the next Read opens a new one there; a Seek to where the body stands
// (or a Seek without a Read after it) sends nothing. Nothing is buffered beyond the HTTP
// body, so memory does not grow with the object or the ranges.
//
// Every GET carries `If-Match: "<etag>"`, and its answer is checked: the ETag, the total size
// (Content-Range, or Content-Length for a whole GET) and the start offset must be the ones
// expected, and the body must not end early. Any mismatch is ErrChanged: a file replaced or
// deleted between two ranges of one response gives an error, never bytes of two versions.
//
// http.ServeContent reads 512 bytes and seeks back to 0 to sniff the type when the response
// has no Content-Type: set it first, or that costs a second GET. A Reader is not safe for
// concurrent use.
type Reader struct {
	b       *Bucket
	ctx     context.Context
	key     string
	size    int64
	etag    string // without quotes; "" checks nothing
	modTime time.Time

	off     int64         // the offset of the next Read
	body    io.ReadCloser // the open GET, or nil
	bodyOff int64         // the object offset of body's next byte
	closed  bool
	gets    int // GETs sent, for tests and logs
}

// NewReader returns a Reader of the object under key, of size bytes with the S3 ETag etag (as
// Upload or Size returned it; quotes are ignored), shown by Stat with modTime. The requests
// it sends run under ctx (the delivery request's context, so a client that goes away stops
// them). An empty etag turns the ETag checks off (the size is still checked); the fleet store
// always passes one.
func (b *Bucket) NewReader(ctx context.Context, key string, size int64, etag string, modTime time.Time) *Reader {
	return &Reader{b: b, ctx: ctx, key: key, size: size, etag: strings.Trim(etag, `"`), modTime: modTime}
}

// Read reads from the current offset, opening a GET there when none is open.
func (r *Reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, os.ErrClosed
	}
	if r.off >= r.size {
		r.closeBody() // a body at the end has nothing more to give
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.body != nil && r.bodyOff != r.off {
		r.closeBody()
	}
	if r.body == nil {
		if err := r.open(); err != nil {
			return 0, err
		}
	}
	if rest := r.size - r.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := r.body.Read(p)
	r.off += int64(n)
	r.bodyOff = r.off
	switch {
	case err == io.EOF && r.off < r.size:
		r.closeBody()
		return n, r.b.changed("read", r.key, fmt.Errorf("body ended at byte %d of %d", r.off, r.size), nil)
	case err == io.EOF:
		r.closeBody()
		return n, io.EOF
	case err != nil:
		r.closeBody()
		return n, r.b.fail("read", r.key, err)
	}
	return n, nil
}

// Seek sets the offset of the next Read (io.Seeker); it closes the open GET when the offset
// moves away from it. Offsets past the end are allowed (Read then gives io.EOF).
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	if r.closed {
		return 0, os.ErrClosed
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, fmt.Errorf("bucket reader %q: seek: invalid whence %d", r.key, whence)
	}
	if abs < 0 {
		return 0, fmt.Errorf("bucket reader %q: seek: negative position %d", r.key, abs)
	}
	r.off = abs
	if r.body != nil && r.bodyOff != abs {
		r.closeBody()
	}
	return abs, nil
}

// Close closes the open GET, if any. Later calls of Read and Seek give os.ErrClosed.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.closeBody()
	return nil
}

// Stat describes the object: the base name of its key, size and modTime as given to
// NewReader.
func (r *Reader) Stat() (os.FileInfo, error) {
	return fileInfo{name: path.Base(r.key), size: r.size, modTime: r.modTime}, nil
}

// GETs returns how many GET requests the Reader has sent.
func (r *Reader) GETs() int { return r.gets }

func (r *Reader) closeBody() {
	if r.body != nil {
		_ = r.body.Close()
		r.body = nil
	}
}

// open sends a GET from r.off to the end and checks that its answer is the expected object.
func (r *Reader) open() error {
	var opts minio.GetObjectOptions
	if r.off > 0 { // bytes=off- (minio-go writes that for (off, 0) when off > 0)
		if err := opts.SetRange(r.off, 0); err != nil {
			return fmt.Errorf("bucket reader %q: %w", r.key, err)
		}
	}
	if r.etag != "" {
		if err := opts.SetMatchETag(r.etag); err != nil {
			return fmt.Errorf("bucket reader %q: %w", r.key, err)
		}
	}
	r.gets++
	body, info, header, err := r.b.core.GetObject(r.ctx, r.b.name, r.b.key(r.key), opts)
	if err != nil {
		err = r.b.fail("open", r.key, err)
		switch {
		case errors.Is(err, ErrNotExist):
			return r.b.changed("open", r.key, errors.New("the object is gone"), err)
		case errors.Is(err, ErrConflict): // 412 to If-Match
			return r.b.changed("open", r.key, fmt.Errorf("its ETag is no longer %q", r.etag), err)
		}
		return err
	}
	if err := r.check(info, header); err != nil {
		_ = body.Close()
		return err
	}
	r.body, r.bodyOff = body, r.off
	return nil
}

// check compares a GET's answer with the object expected: ETag, total size, first byte.
func (r *Reader) check(info minio.ObjectInfo, header http.Header) error {
	if got := strings.Trim(info.ETag, `"`); r.etag != "" && got != r.etag {
		return r.b.changed("open", r.key, fmt.Errorf("ETag %q, want %q", got, r.etag), nil)
	}
	start, total := int64(0), info.Size // a 200: the whole object
	if cr := header.Get("Content-Range"); cr != "" {
		var ok bool
		if start, total, ok = parseContentRange(cr); !ok {
			return fmt.Errorf("bucket open %s %q: bad Content-Range %q", r.b.name, r.b.key(r.key), cr)
		}
	} else if r.off > 0 {
		return fmt.Errorf("bucket open %s %q: a GET from byte %d answered without Content-Range", r.b.name, r.b.key(r.key), r.off)
	}
	if total != r.size {
		return r.b.changed("open", r.key, fmt.Errorf("%d bytes, want %d", total, r.size), nil)
	}
	if start != r.off {
		return fmt.Errorf("bucket open %s %q: asked from byte %d, answered from %d", r.b.name, r.b.key(r.key), r.off, start)
	}
	return nil
}

// parseContentRange reads `bytes START-END/TOTAL`.
func parseContentRange(s string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	first, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(first, 10, 64)
	total, err2 := strconv.ParseInt(tot, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || total < 0 {
		return 0, 0, false
	}
	return start, total, true
}

// changed returns an ErrChanged error of op on key (and ErrNotExist, ErrConflict when cause
// is one), with the secret scrubbed.
func (b *Bucket) changed(op, key string, why, cause error) error {
	text := fmt.Sprintf("bucket %s %s %q: %s: %v", op, b.name, b.key(key), ErrChanged.Error(), why)
	e := &Error{Op: op, Key: key, kinds: []error{ErrChanged}, text: scrub(text, b.secret)}
	var be *Error
	if errors.As(cause, &be) {
		e.Code, e.Status = be.Code, be.Status
		e.kinds = append(e.kinds, be.kinds...)
	}
	return e
}

// fileInfo is Stat's answer.
type fileInfo struct {
	name    string
	size    int64
	modTime time.Time
}

func (fi fileInfo) Name() string       { return fi.name }
func (fi fileInfo) Size() int64        { return fi.size }
func (fi fileInfo) Mode() fs.FileMode  { return 0o444 }
func (fi fileInfo) ModTime() time.Time { return fi.modTime }
func (fi fileInfo) IsDir() bool        { return false }
func (fi fileInfo) Sys() any           { return nil }
