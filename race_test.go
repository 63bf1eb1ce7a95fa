package streamdownloads_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// TestCreateDeleteRace: a POST of one type racing a DELETE of the video's other type
// (which removes the video's folder when it empties it) never answers 500; each answers
// what it did, and the created download is there afterwards.
func TestCreateDeleteRace(t *testing.T) {
	origin := testutil.NewOrigin(t, demoCopies(t, "v"))
	e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", "")
	// Jobs wait at their first segment: the race is between the records and folders.
	origin.HoldSegmentsAfter(0)
	const tries = 60
	for i := range tries {
		if code, env := e.call("POST", "/a/stream/v/downloads/audio"); code != 200 {
			t.Fatalf("try %d: POST audio: %d %+v", i, code, env.Errors)
		}
		var wg sync.WaitGroup
		var post, del *http.Response
		var postBody, delBody string
		wg.Go(func() { post, postBody = e.rawCall("POST", "/a/stream/v/downloads") })
		wg.Go(func() { del, delBody = e.rawCall("DELETE", "/a/stream/v/downloads/audio") })
		wg.Wait()
		if post.StatusCode != 200 || del.StatusCode != 200 {
			t.Fatalf("try %d: POST default %d %s; DELETE audio %d %s", i, post.StatusCode, postBody, del.StatusCode, delBody)
		}
		if got := e.status("v"); got != "inprogress" {
			t.Fatalf("try %d: default after the race: %s", i, got)
		}
		if _, err := os.Stat(filepath.Join(e.dir, "v", "default.json")); err != nil {
			t.Fatalf("try %d: the record of the created download: %v", i, err)
		}
		if code, env := e.call("DELETE", "/a/stream/v/downloads"); code != 200 {
			t.Fatalf("try %d: DELETE: %d %+v", i, code, env.Errors)
		}
	}
}

// TestStorageErrorsNameNoPath: when the store fails (here the video's folder cannot be
// made, or a record cannot be removed), the API answers 500 with the reason but without
// the server's storage path.
func TestStorageErrorsNameNoPath(t *testing.T) {
	origin := testutil.NewOrigin(t, demoCopies(t, "blocked", "stuck"))
	e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", "")
	// A file where the video's folder should be.
	if err := os.WriteFile(filepath.Join(e.dir, "blocked"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, body := e.rawCall("POST", "/a/stream/blocked/downloads")
	t.Logf("POST: %d %s", resp.StatusCode, body)
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(body, "storage error") || !strings.Contains(body, "not a directory") {
		t.Errorf("POST with a folder that cannot be made: %d %s, want 500 naming a storage error", resp.StatusCode, body)
	}
	if strings.Contains(body, e.dir) {
		t.Errorf("the answer names the storage path %s", e.dir)
	}
	if got := e.status("blocked"); got != "none" {
		t.Errorf("blocked after the failed POST: %s", got)
	}

	e.packageReady("stuck")
	// A record that cannot be removed: a folder in its place, not empty.
	rec := filepath.Join(e.dir, "stuck", "default.json")
	if err := os.Remove(rec); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(rec, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	resp, body = e.rawCall("DELETE", "/a/stream/stuck/downloads")
	t.Logf("DELETE: %d %s", resp.StatusCode, body)
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(body, "storage error") {
		t.Errorf("DELETE of files that cannot be removed: %d %s, want 500 naming a storage error", resp.StatusCode, body)
	}
	if strings.Contains(body, e.dir) {
		t.Errorf("the answer names the storage path %s", e.dir)
	}
}
