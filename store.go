package streamdownloads

// The `store s3` block: a fleet's bucket (docs/spec.md §6, docs/fleet.md), its options, their
// checks, and opening the bucket at load.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage/bucket"
	"go.uber.org/zap"
)

// Store is where a fleet keeps its downloads; s3 is the only kind.
type Store struct {
	// S3 is an S3-compatible bucket (AWS S3, Cloudflare R2, MinIO, Ceph RGW, …) that
	// honours conditional writes (If-None-Match: * and If-Match on PutObject), which is
	// checked when the config loads.
	S3 *S3Store `json:"s3,omitempty"`
}

// S3Store is the `store s3 { … }` block. Every string takes the placeholders {env.*} and
// {file.*}; the secret never appears in an error or a log line.
type S3Store struct {
	// Endpoint is the server's URL, scheme://host[:port] only: https://s3.example.com, or
	// http://127.0.0.1:9000 for a local server; its scheme decides TLS. Required.
	Endpoint string `json:"endpoint,omitempty"`
	// Bucket is the bucket's name; it must exist. Required.
	Bucket string `json:"bucket,omitempty"`
	// Region is the bucket's region (us-east-1, auto for R2); empty: asked of the server.
	Region string `json:"region,omitempty"`
	// Prefix is put before every key ("fleet/a": keys under fleet/a/); empty for none. Two
	// fleets may share a bucket under different prefixes.
	Prefix string `json:"prefix,omitempty"`
	// AccessKey and SecretKey sign the requests (AWS signature v4). Required.
	AccessKey string `json:"access_key,omitempty"`
	SecretKey string `json:"secret_key,omitempty"`
	// PathStyle forces path-style requests (http://host/bucket/key), which most
	// self-hosted servers want; without it the client picks (virtual-hosted for AWS).
	PathStyle bool `json:"path_style,omitempty"`
	// Lease is how long an instance that packages a download may go without renewing
	// its lease before another instance takes the download over (it renews every third
	// of it). At least 3s. Default: 30s (packager.DefaultLease).
	Lease caddy.Duration `json:"lease,omitempty"`
	// Node names this instance in the leases it holds and in its start-up probe key
	// (probes/<node>); it must be unique in the fleet: letters, digits, '.', '_' and '-',
	// at most 128. Default: the host name, "-" and 8 random hex digits drawn once per
	// process (so it changes when the process restarts).
	Node string `json:"node,omitempty"`
}

// Bounds of the store options.
const (
	minLease            = 3 * time.Second
	storeCheckTimeout   = 10 * time.Second // of the start-up check of the bucket
	maxNodeNameLength   = 128
	storeCacheDirPrefix = ".s3-" // a dot: no video id starts so (ValidID), so no video folder is taken for it
)

// bucketConfig is the bucket client's configuration of s.
func (s *S3Store) bucketConfig() bucket.Config {
	return bucket.Config{
		Endpoint:  s.Endpoint,
		Bucket:    s.Bucket,
		Region:    s.Region,
		Prefix:    s.Prefix,
		AccessKey: s.AccessKey,
		SecretKey: s.SecretKey,
		PathStyle: s.PathStyle,
	}
}

// identity names the shared store: configs with the same identity share its downloads.
func (s *S3Store) identity() string {
	return s.Endpoint + "\n" + s.Bucket + "\n" + s.Prefix
}

// cacheDir is the local cache of s under the storage directory dir, a folder of its own
// per store so that configs with different stores never share one.
func (s *S3Store) cacheDir(dir string) string {
	sum := sha256.Sum256([]byte(s.identity()))
	return filepath.Join(dir, storeCacheDirPrefix+hex.EncodeToString(sum[:])[:12])
}

// claimed is s without its credentials: what handlers sharing a storage_dir must agree on
// (the credentials do not change what they share).
func (s *S3Store) claimed() *S3Store {
	c := *s
	c.AccessKey, c.SecretKey = "", ""
	return &c
}

// validate checks the block once its placeholders are expanded; errors name the option
// (store s3 <option>) and never hold the secret.
func (s *S3Store) validate() error {
	if err := s.bucketConfig().Validate(); err != nil {
		return storeConfigError(err, s.SecretKey)
	}
	if s.Lease != 0 && time.Duration(s.Lease) < minLease {
		return fmt.Errorf("store s3 lease: %s is below the minimum of %s", time.Duration(s.Lease), minLease)
	}
	if s.Node != "" && !validNodeName(s.Node) {
		return fmt.Errorf("store s3 node: %q is not a node name (letters, digits, '.', '_' and '-', at most %d)", s.Node, maxNodeNameLength)
	}
	return nil
}

// storeConfigError turns an error of bucket.Config.Validate ("bucket: endpoint …") into one
// naming the option as the config does ("store s3 endpoint: …"), scrubbing secret.
func storeConfigError(err error, secret string) error {
	msg := strings.TrimPrefix(err.Error(), "bucket: ")
	if secret != "" {
		msg = strings.ReplaceAll(msg, secret, "REDACTED")
	}
	opt, rest, _ := strings.Cut(msg, " ")
	switch opt {
	case "endpoint", "bucket", "region", "prefix", "access_key", "secret_key":
		return fmt.Errorf("store s3 %s: %s", opt, rest)
	}
	return fmt.Errorf("store s3: %s", msg)
}

// validNodeName accepts letters, digits, '.', '_' and '-' (what a host name has).
func validNodeName(n string) bool {
	if n == "" || len(n) > maxNodeNameLength {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// defaultNode is the node name of this process when node is not set: the host name, "-"
// and 8 random hex digits, drawn once.
var defaultNode = sync.OnceValue(func() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	// Only what a node name may hold, so that the default always validates.
	host = strings.Map(func(r rune) rune {
		if validNodeName(string(r)) {
			return r
		}
		return '-'
	}, host)
	if len(host) > maxNodeNameLength-9 {
		host = host[:maxNodeNameLength-9]
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
})

// open builds the bucket client of s and checks, with the probe key
// probes/<node>, that the bucket honours conditional writes. A bucket that does not, or
// that refuses the check (access denied, no such bucket: a 4xx), fails the load; one that
// cannot be reached (network, timeout, 5xx) only logs a warning: the instance starts
// degraded (unchecked), and its manager checks in the background, answering 503 until then.
func (s *S3Store) open(ctx context.Context, log *zap.Logger) (b *bucket.Bucket, unchecked bool, err error) {
	b, err = bucket.New(s.bucketConfig())
	if err != nil {
		return nil, false, storeConfigError(err, s.SecretKey)
	}
	cctx, cancel := context.WithTimeout(ctx, storeCheckTimeout)
	defer cancel()
	err = b.CheckConditional(cctx, "probes/"+s.Node)
	if err == nil {
		return b, false, nil
	}
	msg := err.Error() // bucket errors are scrubbed already
	if s.SecretKey != "" {
		msg = strings.ReplaceAll(msg, s.SecretKey, "REDACTED")
	}
	if errors.Is(err, bucket.ErrNoConditionalWrites) {
		return nil, false, fmt.Errorf("store s3: %s (endpoint %s)", msg, s.Endpoint)
	}
	var be *bucket.Error
	if errors.As(err, &be) && be.Status >= 400 && be.Status < 500 &&
		be.Status != http.StatusRequestTimeout && be.Status != http.StatusTooManyRequests {
		return nil, false, fmt.Errorf("store s3: the bucket refused the start-up check of conditional writes (check bucket, region, prefix, access_key and secret_key): %s", msg)
	}
	log.Warn("bucket unreachable at start; starting degraded",
		zap.String("endpoint", s.Endpoint), zap.String("bucket", s.Bucket), zap.String("prefix", s.Prefix),
		zap.String("node", s.Node), zap.String("error", msg))
	return b, true, nil
}
