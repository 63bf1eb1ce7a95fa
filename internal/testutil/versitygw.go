package testutil

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"go/build"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// VersitygwInstall is the command that installs the S3 server the fleet tests run against
// (.ci/run runs it once, outside the timed tests; about a minute on 2 cores).
const VersitygwInstall = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// S3Server is a versitygw (a real S3 server, posix backend) on 127.0.0.1 with one bucket.
// Stop and Start let a test take the bucket away and bring it back (same port, same data).
type S3Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	Bucket    string
	AccessKey string
	SecretKey string
	Dir       string // the posix backend's directory: one sub-directory per bucket

	t    testing.TB
	bin  string
	port int
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// StartS3 starts a versitygw for the test, with a bucket, and returns what a client needs;
// it is stopped at the test's cleanup. A missing versitygw fails the test (with the install
// command), except with -short, which skips.
func StartS3(t testing.TB) (endpoint, bucket, accessKey, secretKey string) {
	t.Helper()
	s := StartS3Server(t)
	return s.Endpoint, s.Bucket, s.AccessKey, s.SecretKey
}

// StartS3Server is StartS3 returning the server, for tests that stop and restart it.
func StartS3Server(t testing.TB) *S3Server {
	t.Helper()
	bin := versitygwPath(t)
	dir := t.TempDir()
	s := &S3Server{
		Bucket:    "downloads",
		AccessKey: "test-access-key",
		SecretKey: "test-secret-key-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		Dir:       filepath.Join(dir, "data"),
		t:         t,
		bin:       bin,
		port:      FreePort(t),
		log:       filepath.Join(dir, "versitygw.log"),
	}
	s.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", s.port)
	if err := os.Mkdir(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	s.Start()
	if status, body, err := s.signed(http.MethodPut, "/"+s.Bucket); err != nil || status != http.StatusOK {
		t.Fatalf("versitygw: create bucket %q: status %d, %v\n%s", s.Bucket, status, err, body)
	}
	return s
}

// versitygwPath finds the binary on PATH, in $GOBIN or in $GOPATH/bin.
func versitygwPath(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	for _, gp := range filepath.SplitList(build.Default.GOPATH) {
		dirs = append(dirs, filepath.Join(gp, "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "versitygw")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	if testing.Short() {
		t.Skipf("versitygw not found on PATH or in %v (skipped with -short); install it: %s", dirs, VersitygwInstall)
	}
	t.Fatalf("versitygw (an S3 server) is needed by this test and is not installed (looked on PATH and in %v); install it: %s (or run with -short)", dirs, VersitygwInstall)
	return ""
}

// Start starts the server (again, after Stop) and waits until it answers requests. Call it
// from the test's goroutine (it fails the test when the server does not come up).
func (s *S3Server) Start() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatal("versitygw: Start while running")
	}
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(s.bin, "--port", "127.0.0.1:"+strconv.Itoa(s.port), "--quiet", "posix", s.Dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("versitygw: %v", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(s.done)

	// Ready when a signed request gets an answer from S3 (ListBuckets: 200).
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, _, err := s.signed(http.MethodGet, "/")
		if err == nil && status == http.StatusOK {
			return
		}
		select {
		case <-s.done:
			s.cmd = nil
			s.t.Fatalf("versitygw exited at start (%s):\n%s", cmd.ProcessState, s.Log())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("versitygw did not answer within 30 s (last: status %d, %v):\n%s", status, err, s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the server (SIGTERM, then SIGKILL after 5 s); the data stays for Start.
// Stopping a stopped server does nothing.
func (s *S3Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Log returns what the server printed so far.
func (s *S3Server) Log() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// signed sends an empty-bodied request signed with AWS signature v4 (what versitygw wants
// on every request), so that starting the server needs no S3 client library.
func (s *S3Server) signed(method, path string) (status int, body []byte, err error) {
	req, err := http.NewRequest(method, s.Endpoint+path, nil)
	if err != nil {
		return 0, nil, err
	}
	const region, service = "us-east-1", "s3"
	now := time.Now().UTC()
	amzDate, day := now.Format("20060102T150405Z"), now.Format("20060102")
	emptyHash := hex.EncodeToString(sha256.New().Sum(nil))
	host := req.URL.Host
	canonical := method + "\n" + path + "\n\n" +
		"host:" + host + "\nx-amz-content-sha256:" + emptyHash + "\nx-amz-date:" + amzDate + "\n\n" +
		"host;x-amz-content-sha256;x-amz-date\n" + emptyHash
	sum := sha256.Sum256([]byte(canonical))
	scope := day + "/" + region + "/" + service + "/aws4_request"
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	mac := func(key []byte, data string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(data))
		return h.Sum(nil)
	}
	key := mac(mac(mac(mac([]byte("AWS4"+s.SecretKey), day), region), service), "aws4_request")
	req.Header.Set("x-amz-date", amzDate)
	req.Header.Set("x-amz-content-sha256", emptyHash)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+s.AccessKey+"/"+scope+
		", SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature="+hex.EncodeToString(mac(key, toSign)))
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, body, err
}
