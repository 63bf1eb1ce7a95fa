// Package bucket is a small client of an S3-compatible bucket (AWS S3, Cloudflare R2, MinIO,
// Ceph RGW, versitygw, …) for the fleet store (docs/spec.md §6, issue 14): small objects written with
// conditional requests (Create with If-None-Match: *, Replace with If-Match: <etag>), whose
// lost races all come back as ErrConflict; large files uploaded in bounded multipart parts from
// a finished local file; ranged reads. It is built on github.com/minio/minio-go/v7.
//
// Every key a caller passes is relative to Config.Prefix. The secret key never appears in an
// error text or in Config's String form. Requests that fail at the network or with a 5xx are
// retried by minio-go with backoff (a refused connection gives up after about 0.6 s); callers
// that must not wait that long (lease renewals, the API) pass a context with a deadline.
package bucket

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

const (
	// MaxGetSize bounds what Get reads: it is meant for records and leases, not files (Open).
	MaxGetSize = 1 << 20
	// MinPartSize is S3's smallest multipart part (all but the last).
	MinPartSize = 5 << 20
	// DefaultPartSize is the part size of Upload when Config.PartSize is 0.
	DefaultPartSize = 16 << 20
	// maxRetries is how many times a request is sent before it fails.
	maxRetries = 4
	// uploadThreads is how many parts Upload sends at once; memory does not grow with it,
	// since each part is read from the file as it is sent.
	uploadThreads = 2
)

var (
	// ErrConflict: a conditional write lost — the object exists (Create), or its ETag is no
	// longer the one given (Replace). S3 answers 412 Precondition Failed, or AWS's 409
	// ConditionalRequestConflict when two conditional writes race. Re-read and obey.
	ErrConflict = errors.New("bucket: conditional write lost (object exists or changed)")
	// ErrNotExist: no object under the key.
	ErrNotExist = errors.New("bucket: object does not exist")
	// ErrTooLarge: Get found an object bigger than MaxGetSize.
	ErrTooLarge = errors.New("bucket: object too large for Get")
	// ErrNoConditionalWrites: CheckConditional found that the bucket does not honour
	// If-None-Match / If-Match on PutObject; the fleet protocol is unsafe on it.
	ErrNoConditionalWrites = errors.New("bucket does not honour conditional writes (If-None-Match: * and If-Match on PutObject); the fleet store cannot run on it")
)

// Config says where the bucket is and how to sign in. It mirrors the Caddyfile's
// `store s3 { endpoint bucket region prefix access_key secret_key path_style }`.
type Config struct {
	// Endpoint is a URL, e.g. https://s3.us-east-1.amazonaws.com or http://127.0.0.1:9000;
	// its scheme decides TLS. No path.
	Endpoint string
	// Bucket is the bucket's name; it must exist.
	Bucket string
	// Region is the bucket's region (e.g. us-east-1, or auto for R2); empty lets the client
	// ask the server (one GetBucketLocation request, cached).
	Region string
	// Prefix is put before every key ("fleet/a" → keys under "fleet/a/"); empty for none.
	Prefix string
	// AccessKey and SecretKey sign the requests (AWS signature v4).
	AccessKey string
	SecretKey string
	// PathStyle forces path-style requests (http://host/bucket/key), which most self-hosted
	// servers want; otherwise the client picks (virtual-hosted for AWS, path for the rest).
	PathStyle bool
	// PartSize is Upload's multipart part size in bytes: 0 for DefaultPartSize, else at
	// least MinPartSize. Upload reads one part at a time per thread from the file, so
	// memory is bounded by the HTTP buffers, not by the part size.
	PartSize int64
}

// String hides the secret key, so that a Config printed into a log line is harmless.
func (c Config) String() string {
	secret := ""
	if c.SecretKey != "" {
		secret = "REDACTED"
	}
	return fmt.Sprintf("{Endpoint:%s Bucket:%s Region:%s Prefix:%s AccessKey:%s SecretKey:%s PathStyle:%t PartSize:%d}",
		c.Endpoint, c.Bucket, c.Region, c.Prefix, c.AccessKey, secret, c.PathStyle, c.PartSize)
}

// GoString is String, for %#v.
func (c Config) GoString() string { return "bucket.Config" + c.String() }

// Validate checks the options; its error names the bad one by its Caddyfile name.
func (c Config) Validate() error {
	_, err := c.endpoint()
	return err
}

// endpoint validates c and returns the parsed endpoint URL.
func (c Config) endpoint() (*url.URL, error) {
	if c.Endpoint == "" {
		return nil, errors.New("bucket: endpoint is required (a URL such as https://s3.example.com)")
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil {
		return nil, errors.New("bucket: endpoint is not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("bucket: endpoint %q must start with http:// or https://", c.Endpoint)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("bucket: endpoint %q has no host", c.Endpoint)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("bucket: endpoint %q must be scheme://host[:port] only (no credentials, path or query)", u.Redacted())
	}
	if c.Bucket == "" {
		return nil, errors.New("bucket: bucket is required")
	}
	if err := s3utils.CheckValidBucketName(c.Bucket); err != nil {
		return nil, fmt.Errorf("bucket: bucket %q is not a valid bucket name: %v", c.Bucket, err)
	}
	if strings.HasPrefix(c.Prefix, "/") || strings.Contains(c.Prefix, "//") {
		return nil, fmt.Errorf("bucket: prefix %q must not start with / or hold an empty segment", c.Prefix)
	}
	if c.AccessKey == "" {
		return nil, errors.New("bucket: access_key is required")
	}
	if c.SecretKey == "" {
		return nil, errors.New("bucket: secret_key is required")
	}
	if c.PartSize != 0 && c.PartSize < MinPartSize {
		return nil, fmt.Errorf("bucket: part_size %d is below S3's minimum of %d bytes (5 MiB)", c.PartSize, MinPartSize)
	}
	return u, nil
}

// Bucket is a client of one bucket under one prefix. It is safe for concurrent use.
type Bucket struct {
	client   *minio.Client
	core     minio.Core
	name     string
	prefix   string // "" or ending in "/"
	secret   string // to scrub from error texts
	partSize int64
}

// New validates cfg and returns a client. It sends no request (CheckConditional does).
func New(cfg Config) (*Bucket, error) {
	u, err := cfg.endpoint()
	if err != nil {
		return nil, err
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       u.Scheme == "https",
		Region:       cfg.Region,
		BucketLookup: lookup,
		// Four tries (about 0.6 s of backoff) rather than minio-go's ten (about 4 s): a
		// bucket that does not answer is told to the API's clients as a 503 promptly, and
		// the callers that must persist (renewals, uploads) try again themselves.
		MaxRetries: maxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("bucket: %s", scrub(err.Error(), cfg.SecretKey))
	}
	prefix := cfg.Prefix
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	partSize := cfg.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	return &Bucket{
		client:   client,
		core:     minio.Core{Client: client},
		name:     cfg.Bucket,
		prefix:   prefix,
		secret:   cfg.SecretKey,
		partSize: partSize,
	}, nil
}

// Name returns the bucket's name.
func (b *Bucket) Name() string { return b.name }

// key returns the object name of a caller's key.
func (b *Bucket) key(k string) string { return b.prefix + k }

// Error is what every failed request returns: the operation, the caller's key and the cause,
// with the secret key scrubbed from its text. errors.Is finds ErrConflict, ErrNotExist and
// ErrTooLarge through it.
type Error struct {
	Op   string // create, replace, get, delete, list, upload, open
	Key  string // the caller's key (without the prefix)
	Code string // the S3 error code when the server answered (PreconditionFailed, NoSuchKey, …)
	// Status is the HTTP status when the server answered, else 0.
	Status int
	kinds  []error // of ErrConflict, ErrNotExist, ErrTooLarge
	cause  error   // the client's own error (network, context), not a server's answer
	text   string
}

func (e *Error) Error() string { return e.text }

// Unwrap exposes the sentinel kind and the cause.
func (e *Error) Unwrap() []error {
	errs := append([]error(nil), e.kinds...)
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

// fail turns a client error into an *Error, mapping 412 and 409 ConditionalRequestConflict
// to ErrConflict and 404 NoSuchKey to ErrNotExist. For a replace, a missing object is a lost
// race too (it was deleted): both ErrNotExist and ErrConflict, whichever the server says
// (AWS S3 and versitygw answer 404 NoSuchKey to If-Match on a missing key, others 412).
func (b *Bucket) fail(op, key string, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{Op: op, Key: key}
	resp := minio.ToErrorResponse(err)
	e.Code, e.Status = resp.Code, resp.StatusCode
	switch {
	case errors.Is(err, ErrTooLarge):
		e.kinds = []error{ErrTooLarge}
	case resp.StatusCode == 412 || resp.Code == "PreconditionFailed" ||
		(resp.StatusCode == 409 && resp.Code == "ConditionalRequestConflict"):
		e.kinds = []error{ErrConflict}
	case resp.Code == "NoSuchKey" || (resp.StatusCode == 404 && resp.Code != "NoSuchBucket"):
		e.kinds = []error{ErrNotExist}
		if op == "replace" {
			e.kinds = append(e.kinds, ErrConflict)
		}
	}
	// The client's own errors (network, context) stay in the chain; its server-response
	// type does not, since its fields could carry request details.
	if resp.StatusCode == 0 {
		e.cause = err
	}
	msg := err.Error()
	if errors.Is(e, ErrConflict) {
		msg = ErrConflict.Error() + " (" + msg + ")"
	}
	e.text = scrub(fmt.Sprintf("bucket %s %s %q: %s", op, b.name, b.key(key), msg), b.secret)
	return e
}

// scrub removes the secret from s, should a server or library ever echo it.
func scrub(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "REDACTED")
}
