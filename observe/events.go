package observe

import (
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/handler"
	"github.com/stream-downloads/caddy-stream-downloads/packager"
)

// The Caddy events of the module (docs/spec.md §7), emitted through Caddy's events app with
// the handler module as their origin.
const (
	EventReady   = "stream_download_ready"   // video, type, size, etag, seconds
	EventFailed  = "stream_download_failed"  // video, type, code, reason, seconds
	EventDeleted = "stream_download_deleted" // video, type
	EventDenied  = "stream_download_denied"  // video, type, status, result, reason, client_ip
)

// eventQueue bounds the events waiting for the events app; beyond, they are dropped
// (and logged): the packager and the requests never wait for event handlers.
const eventQueue = 1024

// Events emits the module's Caddy events for one config. It is a packager.Listener, and
// its Denied is the handler's. Nothing is built for an event no handler subscribes to
// (caddyevents.App.ShouldEmit); the others are emitted in order by one goroutine of the
// config's, since handlers may take their time.
type Events struct {
	ctx   caddy.Context
	app   *caddyevents.App
	log   *zap.Logger
	queue chan event
}

type event struct {
	name string
	data map[string]any
}

// NewEvents returns the events of the config of ctx (a handler's, which becomes the
// events' origin); its goroutine ends with the config.
func NewEvents(ctx caddy.Context, log *zap.Logger) (*Events, error) {
	a, err := ctx.App("events")
	if err != nil {
		return nil, err
	}
	e := &Events{ctx: ctx, app: a.(*caddyevents.App), log: log, queue: make(chan event, eventQueue)}
	go e.loop()
	return e, nil
}

func (e *Events) loop() {
	for {
		select {
		case ev := <-e.queue:
			e.app.Emit(e.ctx, ev.name, ev.data)
		case <-e.ctx.Done():
			return
		}
	}
}

// wants reports whether anything observes the event name.
func (e *Events) wants(name string) bool { return e != nil && e.app.ShouldEmit(name) }

func (e *Events) emit(name string, data map[string]any) {
	select {
	case e.queue <- event{name, data}:
	default:
		e.log.Warn("event dropped: too many waiting for their handlers", zap.String("event", name),
			zap.Any("video", data["video"]), zap.Any("type", data["type"]))
	}
}

// Ready implements packager.Listener.
func (e *Events) Ready(rec packager.Record, took time.Duration) {
	if e.wants(EventReady) {
		e.emit(EventReady, map[string]any{"video": rec.Video, "type": rec.Type, "size": rec.Size,
			"etag": rec.ETag, "seconds": took.Seconds()})
	}
}

// Failed implements packager.Listener.
func (e *Events) Failed(rec packager.Record, took time.Duration) {
	if e.wants(EventFailed) {
		e.emit(EventFailed, map[string]any{"video": rec.Video, "type": rec.Type, "code": rec.ErrorCode,
			"reason": rec.ErrorText, "seconds": took.Seconds()})
	}
}

// Deleted implements packager.Listener.
func (e *Events) Deleted(k packager.Key) {
	if e.wants(EventDeleted) {
		e.emit(EventDeleted, map[string]any{"video": k.Video, "type": k.Type})
	}
}

// Denied is handler.Handler.Denied: a delivery refused because of its token. The
// token itself is never in the data.
func (e *Events) Denied(r *http.Request, d handler.Denial) {
	if !e.wants(EventDenied) {
		return
	}
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	e.emit(EventDenied, map[string]any{"video": d.Video, "type": d.Type, "status": d.Status,
		"result": d.Result, "reason": d.Reason, "client_ip": ip})
}

var _ packager.Listener = (*Events)(nil)
