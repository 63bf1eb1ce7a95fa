package bucket_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage/bucket"
)

// testBucket starts a versitygw for the test and returns a client of its bucket under a
// prefix.
func testBucket(t *testing.T, partSize int64) (*bucket.Bucket, bucket.Config) {
	t.Helper()
	endpoint, name, accessKey, secretKey := testutil.StartS3(t)
	cfg := bucket.Config{
		Endpoint:  endpoint,
		Bucket:    name,
		Region:    "us-east-1",
		Prefix:    "fleet/" + strings.ReplaceAll(t.Name(), "/", "_"),
		AccessKey: accessKey,
		SecretKey: secretKey,
		PathStyle: true,
		PartSize:  partSize,
	}
	b, err := bucket.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b, cfg
}

func TestValidate(t *testing.T) {
	good := bucket.Config{Endpoint: "http://127.0.0.1:9000", Bucket: "downloads", AccessKey: "ak", SecretKey: "sk"}
	for _, tc := range []struct {
		name   string
		change func(*bucket.Config)
		option string // the option the error must name, "" for valid
	}{
		{"good", func(*bucket.Config) {}, ""},
		{"https with prefix and path style", func(c *bucket.Config) {
			c.Endpoint, c.Prefix, c.PathStyle, c.Region = "https://s3.example.com/", "fleet/a", true, "auto"
		}, ""},
		{"part size", func(c *bucket.Config) { c.PartSize = bucket.MinPartSize }, ""},
		{"no endpoint", func(c *bucket.Config) { c.Endpoint = "" }, "endpoint"},
		{"endpoint without scheme", func(c *bucket.Config) { c.Endpoint = "127.0.0.1:9000" }, "endpoint"},
		{"endpoint ftp", func(c *bucket.Config) { c.Endpoint = "ftp://h" }, "endpoint"},
		{"endpoint without host", func(c *bucket.Config) { c.Endpoint = "http://" }, "endpoint"},
		{"endpoint with path", func(c *bucket.Config) { c.Endpoint = "http://h/bucket" }, "endpoint"},
		{"endpoint with credentials", func(c *bucket.Config) { c.Endpoint = "http://u:pw@h" }, "endpoint"},
		{"no bucket", func(c *bucket.Config) { c.Bucket = "" }, "bucket"},
		{"bucket with slash", func(c *bucket.Config) { c.Bucket = "abc/d" }, "bucket"},
		{"bucket too short", func(c *bucket.Config) { c.Bucket = "ab" }, "bucket"},
		{"prefix with leading slash", func(c *bucket.Config) { c.Prefix = "/x" }, "prefix"},
		{"prefix with empty segment", func(c *bucket.Config) { c.Prefix = "a//b" }, "prefix"},
		{"no access key", func(c *bucket.Config) { c.AccessKey = "" }, "access_key"},
		{"no secret key", func(c *bucket.Config) { c.SecretKey = "" }, "secret_key"},
		{"small part size", func(c *bucket.Config) { c.PartSize = 1 << 20 }, "part_size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.change(&c)
			err := c.Validate()
			_, nerr := bucket.New(c)
			if (err == nil) != (nerr == nil) {
				t.Fatalf("Validate: %v, New: %v", err, nerr)
			}
			switch {
			case tc.option == "" && err != nil:
				t.Fatalf("valid config refused: %v", err)
			case tc.option != "" && err == nil:
				t.Fatalf("invalid config accepted: %+v", c)
			case tc.option != "" && !strings.Contains(err.Error(), tc.option):
				t.Fatalf("error %q does not name %q", err, tc.option)
			}
			if err != nil && strings.Contains(err.Error(), "pw") {
				t.Fatalf("error %q shows the endpoint's password", err)
			}
		})
	}
}

func TestConfigStringHidesSecret(t *testing.T) {
	c := bucket.Config{Endpoint: "http://h", Bucket: "b", AccessKey: "ak", SecretKey: "s3cr3t-value"}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), fmt.Sprint(&c)} {
		if strings.Contains(s, "s3cr3t-value") {
			t.Fatalf("secret printed: %s", s)
		}
	}
}

func TestCreateReplaceGetDelete(t *testing.T) {
	b, _ := testBucket(t, 0)
	ctx := context.Background()

	if _, _, err := b.Get(ctx, "rec"); !errors.Is(err, bucket.ErrNotExist) {
		t.Fatalf("Get of a missing key: %v, want ErrNotExist", err)
	}
	if _, err := b.Replace(ctx, "rec", []byte("x"), "0123456789abcdef0123456789abcdef"); !errors.Is(err, bucket.ErrConflict) || !errors.Is(err, bucket.ErrNotExist) {
		t.Fatalf("Replace of a missing key: %v, want ErrConflict and ErrNotExist", err)
	}
	if _, err := b.Open(ctx, "rec", 0, 1); !errors.Is(err, bucket.ErrNotExist) {
		t.Fatalf("Open of a missing key: %v, want ErrNotExist", err)
	}

	e1, err := b.Create(ctx, "rec", []byte("one"))
	if err != nil || e1 == "" {
		t.Fatalf("Create: %q, %v", e1, err)
	}
	if _, err := b.Create(ctx, "rec", []byte("two")); !errors.Is(err, bucket.ErrConflict) || !bucket.IsConflict(err) {
		t.Fatalf("second Create: %v, want ErrConflict", err)
	}
	data, etag, err := b.Get(ctx, "rec")
	if err != nil || string(data) != "one" || etag != e1 {
		t.Fatalf("Get: %q %q %v, want %q %q", data, etag, err, "one", e1)
	}

	e2, err := b.Replace(ctx, "rec", []byte("three"), e1)
	if err != nil || e2 == e1 {
		t.Fatalf("Replace with the current ETag: %q, %v", e2, err)
	}
	if _, err := b.Replace(ctx, "rec", []byte("four"), e1); !errors.Is(err, bucket.ErrConflict) {
		t.Fatalf("Replace with a stale ETag: %v, want ErrConflict", err)
	}
	// The quoted form of an ETag (as in HTTP headers) is accepted too.
	e3, err := b.Replace(ctx, "rec", []byte("five"), `"`+e2+`"`)
	if err != nil {
		t.Fatalf("Replace with a quoted ETag: %v", err)
	}
	if data, etag, err := b.Get(ctx, "rec"); err != nil || string(data) != "five" || etag != e3 {
		t.Fatalf("Get after replaces: %q %q %v", data, etag, err)
	}
	if _, err := b.Replace(ctx, "rec", []byte("x"), ""); err == nil {
		t.Fatal("Replace without an ETag accepted")
	}

	if err := b.Delete(ctx, "rec"); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "rec"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	if _, _, err := b.Get(ctx, "rec"); !bucket.IsNotExist(err) {
		t.Fatalf("Get after Delete: %v, want ErrNotExist", err)
	}
	if _, err := b.Replace(ctx, "rec", []byte("x"), e3); !errors.Is(err, bucket.ErrConflict) || !errors.Is(err, bucket.ErrNotExist) {
		t.Fatalf("Replace after Delete: %v, want ErrConflict and ErrNotExist", err)
	}
	if _, err := b.Create(ctx, "rec", []byte("again")); err != nil {
		t.Fatalf("Create after Delete: %v", err)
	}
}

func TestGetTooLarge(t *testing.T) {
	b, _ := testBucket(t, 0)
	ctx := context.Background()
	big := bytes.Repeat([]byte{'x'}, bucket.MaxGetSize+1)
	if _, err := b.Create(ctx, "big", big); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Get(ctx, "big"); !errors.Is(err, bucket.ErrTooLarge) {
		t.Fatalf("Get of %d bytes: %v, want ErrTooLarge", len(big), err)
	}
	if _, err := b.Create(ctx, "max", big[:bucket.MaxGetSize]); err != nil {
		t.Fatal(err)
	}
	if data, _, err := b.Get(ctx, "max"); err != nil || len(data) != bucket.MaxGetSize {
		t.Fatalf("Get of MaxGetSize bytes: %d, %v", len(data), err)
	}
}

// TestRaces: of goroutines that Create one key, or Replace it with the same ETag, at once,
// exactly one wins and the others get ErrConflict; the object holds the winner's bytes.
func TestRaces(t *testing.T) {
	b, _ := testBucket(t, 0)
	ctx := context.Background()
	const racers = 8
	race := func(t *testing.T, write func(i int) (string, error)) (winner int, etag string) {
		t.Helper()
		var wg sync.WaitGroup
		start := make(chan struct{})
		etags := make([]string, racers)
		errs := make([]error, racers)
		for i := range racers {
			wg.Go(func() {
				<-start
				etags[i], errs[i] = write(i)
			})
		}
		close(start)
		wg.Wait()
		winner = -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("racers %d and %d both won", winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, bucket.ErrConflict):
				t.Fatalf("racer %d: %v, want ErrConflict", i, err)
			}
		}
		if winner < 0 {
			t.Fatal("no racer won")
		}
		return winner, etags[winner]
	}
	for round := range 5 {
		key := fmt.Sprintf("lease-%d", round)
		w, etag := race(t, func(i int) (string, error) {
			return b.Create(ctx, key, fmt.Appendf(nil, "create by %d", i))
		})
		if data, got, err := b.Get(ctx, key); err != nil || string(data) != fmt.Sprintf("create by %d", w) || got != etag {
			t.Fatalf("after the create race won by %d: %q %q %v", w, data, got, err)
		}
		w, etag2 := race(t, func(i int) (string, error) {
			return b.Replace(ctx, key, fmt.Appendf(nil, "replace by %d", i), etag)
		})
		if data, got, err := b.Get(ctx, key); err != nil || string(data) != fmt.Sprintf("replace by %d", w) || got != etag2 {
			t.Fatalf("after the replace race won by %d: %q %q %v", w, data, got, err)
		}
	}
}

func TestPrefixIsolation(t *testing.T) {
	a, cfg := testBucket(t, 0)
	ctx := context.Background()
	cfg.Prefix += "-other" // shares a string prefix with a's, but not a key segment
	other, err := bucket.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"records/v1/default", "records/v2/default", "files/v1/default.1.mp4"} {
		if _, err := a.Create(ctx, k, []byte("a")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := other.Create(ctx, "records/v1/default", []byte("other")); err != nil {
		t.Fatalf("Create of the same key under another prefix: %v", err)
	}
	if data, _, err := a.Get(ctx, "records/v1/default"); err != nil || string(data) != "a" {
		t.Fatalf("a's object: %q %v", data, err)
	}
	for _, tc := range []struct {
		b      *bucket.Bucket
		prefix string
		want   string
	}{
		{a, "", "files/v1/default.1.mp4 records/v1/default records/v2/default"},
		{a, "records/", "records/v1/default records/v2/default"},
		{a, "records/v2", "records/v2/default"},
		{a, "nothing/", ""},
		{other, "", "records/v1/default"},
	} {
		keys, err := tc.b.Keys(ctx, tc.prefix)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(keys, " "); got != tc.want {
			t.Errorf("Keys(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
	// Breaking out of List early is fine.
	for k, err := range a.List(ctx, "") {
		if err != nil || k != "files/v1/default.1.mp4" {
			t.Fatalf("first key %q, %v", k, err)
		}
		break
	}
	if err := other.Delete(ctx, "records/v1/default"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Get(ctx, "records/v1/default"); err != nil {
		t.Fatalf("a's object after other's Delete: %v", err)
	}
}

// TestUploadAndRanges uploads ~12 MiB in 5 MiB parts (3 parts, the last smaller) from a
// file and reads it back whole and by ranges.
func TestUploadAndRanges(t *testing.T) {
	b, _ := testBucket(t, bucket.MinPartSize)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	want := make([]byte, 12<<20+12345)
	for i := range want {
		want[i] = byte(rng.Uint32())
	}
	path := filepath.Join(t.TempDir(), "staging.mp4")
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	etag, err := b.Upload(ctx, "files/v/default.1.mp4", f, int64(len(want)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(etag, "-3") {
		t.Errorf("ETag %q: want a multipart ETag of 3 parts (…-3)", etag)
	}
	if size, stat, err := b.Size(ctx, "files/v/default.1.mp4"); err != nil || size != int64(len(want)) || stat != etag {
		t.Fatalf("Size: %d %q %v, want %d %q", size, stat, err, len(want), etag)
	}
	read := func(off, n int64) []byte {
		t.Helper()
		rc, err := b.Open(ctx, "files/v/default.1.mp4", off, n)
		if err != nil {
			t.Fatalf("Open(%d, %d): %v", off, n, err)
		}
		defer rc.Close()
		got, err := io.ReadAll(rc)
		if err != nil {
			t.Fatalf("Open(%d, %d): read: %v", off, n, err)
		}
		return got
	}
	if got := read(0, -1); !bytes.Equal(got, want) {
		t.Fatalf("whole object: %d bytes, differs from the %d uploaded", len(got), len(want))
	}
	size := int64(len(want))
	for _, r := range [][2]int64{
		{0, 1}, {0, 1024}, {5<<20 - 10, 20}, {10<<20 - 1, 2}, {size - 1, 1}, {size - 100, 100},
		{1234567, 7654321}, {size - 10, 1000}, {3 << 20, -1}, {size - 1, -1}, {42, 0},
	} {
		off, n := r[0], r[1]
		end := size
		if n >= 0 && off+n < size {
			end = off + n
		}
		if got := read(off, n); !bytes.Equal(got, want[off:end]) {
			t.Errorf("range (%d, %d): %d bytes, differ from the file's [%d:%d]", off, n, len(got), off, end)
		}
	}
	if _, err := b.Open(ctx, "files/v/default.1.mp4", size+10, 5); err == nil {
		t.Error("a range past the end was not refused")
	}

	// A small file is one plain PUT; an empty one works too.
	for _, n := range []int{0, 1000} {
		key := fmt.Sprintf("files/small-%d", n)
		if _, err := b.Upload(ctx, key, bytes.NewReader(want[:n]), int64(n)); err != nil {
			t.Fatalf("Upload of %d bytes: %v", n, err)
		}
		if got := read2(t, b, key); !bytes.Equal(got, want[:n]) {
			t.Fatalf("Upload of %d bytes read back as %d", n, len(got))
		}
	}
}

func read2(t *testing.T, b *bucket.Bucket, key string) []byte {
	t.Helper()
	rc, err := b.Open(context.Background(), key, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestCheckConditional(t *testing.T) {
	b, _ := testBucket(t, 0)
	ctx := context.Background()
	// A leftover probe (a node killed mid-check) does not fail the next check.
	if _, err := b.Create(ctx, "probe/node-1", []byte("left over")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := b.CheckConditional(ctx, "probe/node-1"); err != nil {
			t.Fatalf("CheckConditional on versitygw: %v", err)
		}
	}
	if keys, err := b.Keys(ctx, ""); err != nil || len(keys) != 0 {
		t.Fatalf("probe not cleaned up: %q %v", keys, err)
	}
}

// TestSecretNotInErrors: requests signed with a wrong secret fail, and no error text
// carries the secret.
func TestSecretNotInErrors(t *testing.T) {
	_, cfg := testBucket(t, 0)
	const secret = "wrong-secret-Zq9xK2mP7vL4"
	cfg.SecretKey = secret
	b, err := bucket.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var errs []error
	_, err = b.Create(ctx, "k", []byte("x"))
	errs = append(errs, err)
	_, err = b.Replace(ctx, "k", []byte("x"), "abc")
	errs = append(errs, err)
	_, _, err = b.Get(ctx, "k")
	errs = append(errs, err)
	errs = append(errs, b.Delete(ctx, "k"))
	_, err = b.Keys(ctx, "")
	errs = append(errs, err)
	_, err = b.Upload(ctx, "k", bytes.NewReader([]byte("x")), 1)
	errs = append(errs, err)
	_, err = b.Open(ctx, "k", 0, 1)
	errs = append(errs, err)
	errs = append(errs, b.CheckConditional(ctx, "probe"))
	for i, err := range errs {
		if err == nil {
			t.Fatalf("request %d with a wrong secret succeeded", i)
		}
		if errors.Is(err, bucket.ErrConflict) || errors.Is(err, bucket.ErrNotExist) {
			t.Errorf("request %d: a signature error taken for a lost race or a missing object: %v", i, err)
		}
		for _, s := range []string{err.Error(), fmt.Sprintf("%+v %#v", err, err)} {
			if strings.Contains(s, secret) {
				t.Errorf("request %d: the secret is in the error: %s", i, s)
			}
		}
	}
	t.Logf("e.g. %v", errs[0])
}

// TestBucketDown: with the server stopped, requests fail with an error that is neither a
// lost race nor a missing object, within the caller's deadline; after a restart the data is
// there again.
func TestBucketDown(t *testing.T) {
	srv := testutil.StartS3Server(t)
	b, err := bucket.New(bucket.Config{Endpoint: srv.Endpoint, Bucket: srv.Bucket, Region: "us-east-1",
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	etag, err := b.Create(ctx, "rec", []byte("kept"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	start := time.Now()
	_, _, err = b.Get(ctx, "rec")
	t.Logf("Get with the bucket down, no deadline: %v after %v", err, time.Since(start).Round(time.Millisecond))
	if err == nil || errors.Is(err, bucket.ErrNotExist) || errors.Is(err, bucket.ErrConflict) {
		t.Fatalf("Get with the bucket down: %v", err)
	}
	dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = b.Replace(dctx, "rec", []byte("x"), etag)
	if err == nil || errors.Is(err, bucket.ErrConflict) || time.Since(start) > 2*time.Second {
		t.Fatalf("Replace with the bucket down: %v after %v", err, time.Since(start))
	}
	srv.Start()
	if data, got, err := b.Get(ctx, "rec"); err != nil || string(data) != "kept" || got != etag {
		t.Fatalf("Get after the restart: %q %q %v", data, got, err)
	}
}

// TestUploadMemoryBounded: uploading a 24 MiB file in 5 MiB parts allocates well under the
// file's size (parts are streamed from the file, not buffered; about 4 MiB measured).
func TestUploadMemoryBounded(t *testing.T) {
	b, _ := testBucket(t, bucket.MinPartSize)
	const size = 24 << 20
	path := filepath.Join(t.TempDir(), "staging")
	if err := os.WriteFile(path, bytes.Repeat([]byte("0123456789abcdef"), size/16), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := b.Upload(context.Background(), "f", f, size); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("a %d MiB upload allocated %.1f MiB", size>>20, float64(alloc)/(1<<20))
	if alloc > size/2 {
		t.Fatalf("a %d MiB upload allocated %d MiB: parts are buffered", size>>20, alloc>>20)
	}
}
