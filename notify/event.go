package notify

import (
	"strings"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/packager"
)

// The events.
const (
	EventReady   = "ready"
	EventError   = "error"
	EventDeleted = "deleted"
)

// Event is a webhook's payload: the API's download object (status, url,
// percentComplete, errorReasonCode, errorReasonText) with the video, its type, what
// happened, when, and an id that stays the same across retries (for receivers to
// de-duplicate).
type Event struct {
	ID    string `json:"id"`
	Event string `json:"event"` // ready, error, deleted
	Time  string `json:"time"`  // RFC 3339, UTC
	Video string `json:"video"`
	Type  string `json:"type"`
	// Status is the download's status: ready or error as in the API, deleted once
	// deleted.
	Status string `json:"status"`
	// URL is the file's URL, from public_url; without public_url there is no request to
	// take the host from, and it is left out.
	URL             string  `json:"url,omitempty"`
	PercentComplete float64 `json:"percentComplete"`
	ErrorReasonCode string  `json:"errorReasonCode,omitempty"`
	ErrorReasonText string  `json:"errorReasonText,omitempty"`
	// Size is the packaged file's bytes (ready).
	Size int64 `json:"size,omitempty"`
}

// Listener is the packager.Listener that queues a webhook per outcome; publicURL is
// the base of the events' url (none when empty).
func (s *Sender) Listener(publicURL string) packager.Listener {
	return listener{s: s, base: strings.TrimSuffix(publicURL, "/")}
}

type listener struct {
	s    *Sender
	base string
}

func (l listener) event(name string, k packager.Key, status string) Event {
	ev := Event{Event: name, Video: k.Video, Type: k.Type, Status: status}
	if t, ok := packager.ParseType(k.Type); ok && l.base != "" {
		ev.URL = l.base + "/" + k.Video + "/downloads/" + t.FileName()
	}
	return ev
}

func (l listener) Ready(rec packager.Record, _ time.Duration) {
	ev := l.event(EventReady, rec.Key(), string(packager.StatusReady))
	ev.PercentComplete = 100
	ev.Size = rec.Size
	l.s.Enqueue(ev)
}

func (l listener) Failed(rec packager.Record, _ time.Duration) {
	ev := l.event(EventError, rec.Key(), string(packager.StatusError))
	ev.ErrorReasonCode, ev.ErrorReasonText = rec.ErrorCode, rec.ErrorText
	l.s.Enqueue(ev)
}

func (l listener) Deleted(k packager.Key) {
	l.s.Enqueue(l.event(EventDeleted, k, EventDeleted))
}
