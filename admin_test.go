package streamdownloads_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testcaddy"
	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// adminView is the JSON of the admin endpoint's /stream_downloads/.
type adminView struct {
	Managers []struct {
		Store   string `json:"store"`
		Node    string `json:"node"`
		MaxJobs int    `json:"max_jobs"`
		Jobs    []struct {
			Video   string    `json:"video"`
			Type    string    `json:"type"`
			Percent float64   `json:"percent"`
			Bytes   int64     `json:"bytes"`
			Since   time.Time `json:"since"`
		} `json:"jobs"`
		Queue []struct {
			Video string `json:"video"`
			Type  string `json:"type"`
		} `json:"queue"`
		Storage struct {
			Bytes      int64 `json:"bytes"`
			Files      int   `json:"files"`
			MaxStorage int64 `json:"max_storage"`
		} `json:"storage"`
		Errors []struct {
			Time   time.Time `json:"time"`
			Video  string    `json:"video"`
			Type   string    `json:"type"`
			Code   string    `json:"code"`
			Reason string    `json:"reason"`
		} `json:"errors"`
	} `json:"managers"`
}

func (o *opsEdge) adminView() (adminView, string) {
	o.t.Helper()
	body := o.adminGet("/stream_downloads/")
	var v adminView
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		o.t.Fatalf("admin view: %v in %s", err, body)
	}
	return v, body
}

// TestAdminView reads the admin endpoint's /stream_downloads/ of a real Caddy while a
// job runs and two downloads wait (max_jobs 1), then once they are done: the job with
// its progress, the queue in order, the storage use and the last failure.
func TestAdminView(t *testing.T) {
	o := newOpsEdge(t, "\t\tmax_jobs 1\n\t\tmax_storage 1GiB\n")
	o.origin.Once("/demo/240p/seg_001.ts", testutil.Fault{Kind: testutil.Delay, Delay: 3 * time.Second})
	testcaddy.Start(t, o.cfg)

	for _, v := range []string{"demo", "two", "bad"} {
		if code, env := o.call("POST", "/a/stream/"+v+"/downloads"); code != 200 {
			t.Fatalf("POST %s: %d %+v", v, code, env.Errors)
		}
	}
	var busy adminView
	var sample string
	deadline := time.Now().Add(20 * time.Second)
	for {
		busy, sample = o.adminView()
		if len(busy.Managers) == 1 && len(busy.Managers[0].Jobs) == 1 && busy.Managers[0].Jobs[0].Bytes > 0 && busy.Managers[0].Jobs[0].Percent > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no job in progress in the admin view: %s", sample)
		}
		time.Sleep(20 * time.Millisecond)
	}
	m := busy.Managers[0]
	if m.Store != o.dir || m.MaxJobs != 1 || m.Storage.MaxStorage != 1<<30 || m.Node != "" {
		t.Errorf("manager: %s", sample)
	}
	if j := m.Jobs[0]; j.Video != "demo" || j.Type != "default" || j.Since.IsZero() || time.Since(j.Since) > time.Minute {
		t.Errorf("job: %+v", j)
	}
	if len(m.Queue) != 2 || m.Queue[0].Video != "two" || m.Queue[1].Video != "bad" {
		t.Errorf("queue: %+v", m.Queue)
	}
	if dir := os.Getenv("STREAM_DOWNLOADS_SAMPLE_DIR"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "admin-busy.json"), []byte(sample), 0o644)
	}

	o.waitReady("demo", "default")
	o.waitReady("two", "default")
	if en := o.waitReady("bad", "default"); en.Status != "error" {
		t.Fatalf("bad: %+v", en)
	}
	// The view may lag the API by the end of a job (its record is saved first).
	for {
		idle, body := o.adminView()
		m := idle.Managers[0]
		if len(m.Jobs) == 0 {
			if len(m.Queue) != 0 || m.Storage.Files != 2 || m.Storage.Bytes <= 0 {
				t.Errorf("idle: %s", body)
			}
			if len(m.Errors) != 1 || m.Errors[0].Video != "bad" || m.Errors[0].Code != "origin_error" || m.Errors[0].Time.IsZero() {
				t.Errorf("errors: %s", body)
			}
			if dir := os.Getenv("STREAM_DOWNLOADS_SAMPLE_DIR"); dir != "" {
				_ = os.WriteFile(filepath.Join(dir, "admin-idle.json"), []byte(body), 0o644)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs still shown: %s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Only GET.
	resp, err := http.Post(o.admin+"/stream_downloads/", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}
