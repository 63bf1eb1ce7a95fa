package bucket_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/packager/storage/bucket"
)

// fakeS3 answers every PUT with status and an S3 error document of code (no body when code
// is ""), as AWS does in the cases no local server reproduces (409 ConditionalRequestConflict
// when two conditional writes race). It is for the error mapping only; the behaviour tests
// run against versitygw.
func fakeS3(t *testing.T, status int, code string) *bucket.Bucket {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		if code != "" {
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>m</Message><RequestId>r</RequestId></Error>`, code)
		}
	}))
	t.Cleanup(srv.Close)
	b, err := bucket.New(bucket.Config{Endpoint: srv.URL, Bucket: "fake-bucket", Region: "us-east-1", AccessKey: "ak", SecretKey: "sk-secret", PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		status   int
		code     string
		conflict bool
		notExist bool
	}{
		{412, "PreconditionFailed", true, false},
		{412, "", true, false},
		{409, "ConditionalRequestConflict", true, false},
		{409, "OperationAborted", false, false},
		{404, "NoSuchKey", true, true}, // on Replace: the record was deleted
		{404, "NoSuchBucket", false, false},
		{403, "AccessDenied", false, false},
	} {
		t.Run(fmt.Sprintf("%d %s", tc.status, tc.code), func(t *testing.T) {
			b := fakeS3(t, tc.status, tc.code)
			_, err := b.Replace(context.Background(), "k", []byte("x"), "abc")
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, bucket.ErrConflict); got != tc.conflict {
				t.Errorf("ErrConflict: %t, want %t (%v)", got, tc.conflict, err)
			}
			if got := errors.Is(err, bucket.ErrNotExist); got != tc.notExist {
				t.Errorf("ErrNotExist: %t, want %t (%v)", got, tc.notExist, err)
			}
			var e *bucket.Error
			if !errors.As(err, &e) || e.Op != "replace" || e.Key != "k" || e.Status != tc.status {
				t.Errorf("error %#v: want op replace, key k, status %d", e, tc.status)
			}
			if strings.Contains(err.Error(), "sk-secret") {
				t.Errorf("secret in %v", err)
			}
		})
	}
}

// TestCheckConditionalRefuses: a bucket that ignores If-None-Match and If-Match (an
// in-memory fake of such a server) is refused with ErrNoConditionalWrites, and the probe key
// is deleted.
func TestCheckConditionalRefuses(t *testing.T) {
	var mu sync.Mutex
	objects := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch r.Method {
		case http.MethodPut:
			objects[r.URL.Path] = "x"
			w.Header().Set("ETag", fmt.Sprintf(`"%032x"`, len(objects)+int(r.ContentLength)))
		case http.MethodDelete:
			delete(objects, r.URL.Path)
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusNotImplemented)
		}
	}))
	defer srv.Close()
	b, err := bucket.New(bucket.Config{Endpoint: srv.URL, Bucket: "fake-bucket", Region: "us-east-1", AccessKey: "ak", SecretKey: "sk", PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	err = b.CheckConditional(context.Background(), "probe/n1")
	if !errors.Is(err, bucket.ErrNoConditionalWrites) || !strings.Contains(err.Error(), "does not honour conditional writes") {
		t.Fatalf("CheckConditional on a bucket without conditional writes: %v", err)
	}
	t.Log(err)
	if len(objects) != 0 {
		t.Fatalf("probe left behind: %v", objects)
	}
}
