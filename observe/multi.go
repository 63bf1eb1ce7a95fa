// Package observe is what operators see of the module: Prometheus metrics (Metrics),
// Caddy events (Events), and Multi, the one packager.Listener that fans a download's
// outcome out to them (and to the webhooks). It is fed by the packager and the handler
// through their small interfaces (packager.Listener, packager.Meter, handler.Meter,
// handler.Handler.Denied); they do not import it.
package observe

import (
	"strings"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/packager"
)

// Multi hears what becomes of downloads and tells each of its listeners, in order.
type Multi []packager.Listener

func (m Multi) Ready(rec packager.Record, took time.Duration) {
	for _, l := range m {
		l.Ready(rec, took)
	}
}

func (m Multi) Failed(rec packager.Record, took time.Duration) {
	for _, l := range m {
		l.Failed(rec, took)
	}
}

func (m Multi) Deleted(k packager.Key) {
	for _, l := range m {
		l.Deleted(k)
	}
}

// typeLabel is the value of a metric's type label for the download type typ: the
// fixed types by name, the others by kind, so that the label's values stay few
// whatever names strangers ask for.
func typeLabel(typ string) string {
	switch {
	case typ == "default", typ == "audio":
		return typ
	case strings.HasSuffix(typ, "p") && len(typ) > 1 && strings.Trim(typ[:len(typ)-1], "0123456789") == "":
		return "height"
	case strings.HasSuffix(typ, ".vtt"):
		return "subtitles"
	}
	return "other"
}

var _ packager.Listener = Multi(nil)
