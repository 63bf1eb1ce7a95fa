package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// The queue on disk: one file per delivery (an event for one URL) in
// <storage_dir>/.webhooks/, named so that the names sort oldest first:
// <enqueued, unix nanoseconds, 20 digits>-<event id>-<8 hex of the URL's SHA-256>.delivery.
// A file is written whole to a temp file and renamed, so a crash leaves the previous
// version or none; temp files (.tmp-*) left by a crash are removed when the queue opens.
// The extension is not .json: the local store reads <storage_dir>/*/*.json as records.

// QueueDir is the queue's folder under the storage directory.
const QueueDir = ".webhooks"

const fileExt = ".delivery"

// delivery is one event to send to one URL, as kept on disk.
type delivery struct {
	name string // file name, set when loaded or first saved

	ID       string    `json:"id"`
	Event    string    `json:"event"` // for log lines
	Video    string    `json:"video"`
	Type     string    `json:"type"`
	URL      string    `json:"url"`
	Body     string    `json:"body"` // the payload, exactly as signed and sent
	Created  time.Time `json:"created"`
	Attempts int       `json:"attempts"`
	Next     time.Time `json:"next"` // the next attempt, not before

	dropped bool // removed from the queue (delivered, given up, pushed out) while in flight
}

func (d *delivery) fileName() string {
	h := sha256.Sum256([]byte(d.URL))
	return fmt.Sprintf("%020d-%s-%s%s", d.Created.UnixNano(), d.ID, hex.EncodeToString(h[:4]), fileExt)
}

// queue is the folder of deliveries.
type queue struct {
	dir string
}

// openQueue opens (creating it) the queue in dir and loads its deliveries, oldest first.
// Files that cannot be read are removed and reported in bad.
func openQueue(dir string) (q *queue, ds []*delivery, bad []error, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(dir, name)
		if strings.HasPrefix(name, ".tmp-") {
			os.Remove(p)
			continue
		}
		if !strings.HasSuffix(name, fileExt) || e.IsDir() {
			continue
		}
		b, err := os.ReadFile(p)
		var d delivery
		if err == nil {
			err = json.Unmarshal(b, &d)
		}
		if err == nil && (d.ID == "" || d.URL == "" || d.Body == "") {
			err = fmt.Errorf("incomplete")
		}
		if err != nil {
			bad = append(bad, fmt.Errorf("webhook delivery %s: %v (removed)", name, err))
			os.Remove(p)
			continue
		}
		d.name = name
		ds = append(ds, &d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].name < ds[j].name })
	return &queue{dir: dir}, ds, bad, nil
}

// save writes d (a new delivery, or its new attempt count and time).
func (q *queue) save(d *delivery) error {
	if d.name == "" {
		d.name = d.fileName()
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(q.dir, ".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(q.dir, d.name))
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// remove deletes d's file.
func (q *queue) remove(d *delivery) error {
	if d.name == "" {
		return nil
	}
	err := os.Remove(filepath.Join(q.dir, d.name))
	if os.IsNotExist(err) {
		return nil
	}
	return err
}
