package streamdownloads_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testcaddy"
	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// noOrigin is an origin no test here asks anything of: these tests load configs.
const noOrigin = "http://127.0.0.1:9/{video_id}/master.m3u8"

// storeBlock is a store s3 block for the directive's body (tabs as newEdge wants them).
func storeBlock(endpoint, bucket, accessKey, secretKey string, more ...string) string {
	b := "\t\tstore s3 {\n" +
		"\t\t\tendpoint " + endpoint + "\n" +
		"\t\t\tbucket " + bucket + "\n" +
		"\t\t\tregion us-east-1\n" +
		"\t\t\taccess_key " + accessKey + "\n" +
		"\t\t\tsecret_key " + secretKey + "\n" +
		"\t\t\tpath_style\n"
	for _, m := range more {
		b += "\t\t\t" + m + "\n"
	}
	return b + "\t\t}\n"
}

// logOption is a global option that writes the module's warnings to file, as JSON.
func logOption(file string) string {
	return "log store {\n\t\toutput file " + file + "\n\t\tinclude http.handlers.stream_downloads\n\t\tlevel WARN\n\t\tformat json\n\t}"
}

// cacheFolder is where the local cache of a store lives under storage_dir.
func cacheFolder(dir, endpoint, bucket, prefix string) string {
	sum := sha256.Sum256([]byte(endpoint + "\n" + bucket + "\n" + prefix))
	return filepath.Join(dir, ".s3-"+hex.EncodeToString(sum[:])[:12])
}

// TestStoreS3 loads configs with store s3 against a real S3 server (versitygw): one with
// the secret from the environment loads (conditional writes checked, the probe key removed,
// the local cache in a folder of its own, no warning, no secret in the log); a wrong secret
// or a missing bucket fails the load naming store s3, without the secret; two sites sharing
// a storage_dir must agree on the store.
func TestStoreS3(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: runs without -short")
	}
	s3 := testutil.StartS3Server(t)
	t.Setenv("SD_TEST_S3_SECRET", s3.SecretKey)

	t.Run("loads", func(t *testing.T) {
		logFile := filepath.Join(t.TempDir(), "caddy.log")
		e := startEdgeWith(t, noOrigin, storeBlock(s3.Endpoint, s3.Bucket, s3.AccessKey, "{env.SD_TEST_S3_SECRET}", "prefix fleet/a", "node test-node-1", "lease 5s"),
			logOption(logFile))
		if fi, err := os.Stat(cacheFolder(e.dir, s3.Endpoint, s3.Bucket, "fleet/a")); err != nil || !fi.IsDir() {
			entries, _ := os.ReadDir(e.dir)
			t.Errorf("no cache folder for the store in storage_dir (%v); it holds %v", err, entries)
		}
		probe := filepath.Join(s3.Dir, s3.Bucket, "fleet", "a", "probes", "test-node-1")
		if _, err := os.Stat(probe); !os.IsNotExist(err) {
			t.Errorf("the probe key is left in the bucket: %v", err)
		}
		if code, _ := e.call("GET", "/a/stream/demo/downloads"); code == 0 {
			t.Error("the API does not answer")
		}
		// A reload with the same store checks the bucket again and keeps its manager.
		testcaddy.Load(t, e.cfg)
		if code, _ := e.call("GET", "/a/stream/demo/downloads"); code == 0 {
			t.Error("the API does not answer after a reload")
		}
		b, _ := os.ReadFile(logFile)
		if strings.Contains(string(b), "unreachable") || strings.Contains(string(b), s3.SecretKey) {
			t.Errorf("log:\n%s", b)
		}
	})

	for _, c := range []struct{ name, block, want, secret string }{
		{"wrong secret", storeBlock(s3.Endpoint, s3.Bucket, s3.AccessKey, "wrong-secret-not-to-echo"),
			"store s3: the bucket refused the start-up check", "wrong-secret-not-to-echo"},
		{"no such bucket", storeBlock(s3.Endpoint, "no-such-bucket", s3.AccessKey, "{env.SD_TEST_S3_SECRET}"),
			"store s3: the bucket refused the start-up check", s3.SecretKey},
		{"secret unset", storeBlock(s3.Endpoint, s3.Bucket, s3.AccessKey, "{env.SD_TEST_S3_UNSET}"),
			"store s3 secret_key: evaluated placeholder {env.SD_TEST_S3_UNSET} is empty", s3.SecretKey},
		{"endpoint from the environment not a URL", storeBlock("{env.SD_TEST_S3_SECRET}", s3.Bucket, s3.AccessKey, "{env.SD_TEST_S3_SECRET}"),
			"store s3 endpoint: ", s3.SecretKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := testcaddy.TryLoad(newEdge(t, noOrigin, c.block).cfg)
			if err == nil {
				caddy.Stop()
				t.Fatal("the config was accepted")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want one containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), c.secret) {
				t.Errorf("the error echoes the secret: %q", err)
			}
		})
	}

	t.Run("sites sharing a storage_dir", func(t *testing.T) {
		dir := t.TempDir()
		port1, port2 := testutil.FreePort(t), testutil.FreePort(t)
		site := func(port int, block string) string { return sharedSite(port, noOrigin, dir, block) }
		a := storeBlock(s3.Endpoint, s3.Bucket, s3.AccessKey, "{env.SD_TEST_S3_SECRET}", "prefix a")
		for _, c := range []struct {
			name, block1, block2 string
			want                 []string
		}{
			{"other prefix", a, storeBlock(s3.Endpoint, s3.Bucket, s3.AccessKey, "{env.SD_TEST_S3_SECRET}", "prefix b"), []string{"storage_dir " + dir, "store s3 prefix"}},
			{"other lease", a, storeBlock(s3.Endpoint, s3.Bucket, s3.AccessKey, "{env.SD_TEST_S3_SECRET}", "prefix a", "lease 1m"), []string{"store s3 lease"}},
			{"store on one side", a, "", []string{"storage_dir " + dir, "store"}},
			{"same store", a, a, nil},
			{"same store, other storage_dir", a, a, []string{"store s3: another stream_downloads handler of this config uses the same bucket and prefix"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				second := site(port2, c.block2)
				if c.name == "same store, other storage_dir" {
					second = strings.Replace(second, dir, t.TempDir(), 1)
				}
				loadShared(t, site(port1, c.block1)+second, c.want, s3.SecretKey)
			})
		}
	})
}

// TestStoreS3NoConditionalWrites: a bucket that answers 200 to every PutObject, whatever its
// If-None-Match or If-Match, fails the load with a message that says so, naming store s3.
func TestStoreS3NoConditionalWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: runs without -short")
	}
	const secret = "fake-s3-secret-not-to-echo"
	var puts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPut:
			w.Header().Set("ETag", fmt.Sprintf(`"%032x"`, puts.Add(1)))
		case http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusNotImplemented)
		}
	}))
	defer srv.Close()
	err := testcaddy.TryLoad(newEdge(t, noOrigin, storeBlock(srv.URL, "fake-bucket", "AKID", secret)).cfg)
	if err == nil {
		caddy.Stop()
		t.Fatal("a bucket without conditional writes was accepted")
	}
	t.Log(err)
	if !strings.Contains(err.Error(), "store s3: ") || !strings.Contains(err.Error(), "does not honour conditional writes") {
		t.Errorf("error %q, want one naming store s3 and the conditional writes", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("the error echoes the secret: %q", err)
	}
	if puts.Load() < 2 {
		t.Errorf("%d PUTs: the check did not run", puts.Load())
	}
}

// TestStoreS3Unreachable: a bucket that cannot be reached when the config loads (a closed
// port) is not fatal: the config loads, degraded, and the log says so, without the secret.
func TestStoreS3Unreachable(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: runs without -short")
	}
	const secret = "unreachable-secret-not-to-echo"
	t.Setenv("SD_TEST_S3_SECRET", secret)
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t))
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	start := time.Now()
	e := startEdgeWith(t, noOrigin, storeBlock(endpoint, "downloads", "AKID", "{env.SD_TEST_S3_SECRET}"), logOption(logFile))
	t.Logf("loaded in %s", time.Since(start).Round(time.Millisecond))
	if code, _ := e.call("GET", "/a/stream/demo/downloads"); code == 0 {
		t.Error("the API does not answer")
	}
	b, _ := os.ReadFile(logFile)
	if !strings.Contains(string(b), "bucket unreachable at start; starting degraded") || !strings.Contains(string(b), `"endpoint":"`+endpoint+`"`) {
		t.Errorf("no warning naming the endpoint in the log:\n%s", b)
	}
	if strings.Contains(string(b), secret) {
		t.Errorf("the log holds the secret:\n%s", b)
	}
}
