package streamdownloads

import (
	"context"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/stream-downloads/caddy-stream-downloads/notify"
	"github.com/stream-downloads/caddy-stream-downloads/observe"
	"github.com/stream-downloads/caddy-stream-downloads/packager"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
	"go.uber.org/zap"
)

// provisionManager opens the packaging manager of dir (or joins the one a running config
// shares) and registers this config's settings with it. Its Listener fans out to the
// manager's metrics, this config's Caddy events and the webhooks.
func (s *StreamDownloads) provisionManager(ctx caddy.Context, dir string, settings packager.Settings) error {
	var listeners observe.Multi
	if ctx.Context != nil {
		events, err := observe.NewEvents(ctx, s.logger)
		if err != nil {
			return fmt.Errorf("loading the events app: %w", err)
		}
		listeners = append(listeners, events)
		s.handler.Denied = events.Denied
	}
	// Webhooks: one sender per directory, across reloads, with the newest config's URLs
	// and secret; its Listener only queues (on disk).
	if len(s.NotifyURL) > 0 {
		wh, release, err := notify.Acquire(dir, notify.Config{URLs: s.NotifyURL, Secret: s.NotifySecret}, s.logger)
		if err != nil {
			return fmt.Errorf("notify_url: opening the webhook queue in storage_dir: %w", err)
		}
		s.releaseNotify = release
		listeners = append(listeners, wh.Listener(s.PublicURL))
	}
	settings.Listener = listeners

	// Without a store, one manager per directory. With store s3, one per directory and
	// store, whose local cache is a folder of its own.
	key, newManager := dir, func() (caddy.Destructor, error) {
		store, err := storage.NewLocal(dir)
		if err != nil {
			return nil, fmt.Errorf("storage_dir %s: %w", dir, err)
		}
		return newManaged(packager.NewManager(store, settings, s.logger), dir), nil
	}
	if s3 := s.s3(); s3 != nil {
		base := ctx.Context
		if base == nil {
			base = context.Background()
		}
		b, unchecked, err := s3.open(base, s.logger)
		if err != nil {
			return err
		}
		cacheDir := s3.cacheDir(dir)
		key = dir + "\x00s3\x00" + s3.identity()
		fleet := packager.Fleet{Bucket: b, Node: s3.Node, Lease: time.Duration(s3.Lease), Unchecked: unchecked}
		// A running manager of this bucket takes the new credentials, lease and node name
		// with the other settings (Configure).
		settings.Fleet = &fleet
		newManager = func() (caddy.Destructor, error) {
			cache, err := storage.NewLocal(cacheDir)
			if err != nil {
				return nil, fmt.Errorf("storage_dir %s: %w", cacheDir, err)
			}
			return newManaged(packager.NewFleetManager(cache, settings, s.logger, fleet), s3.label(cacheDir)), nil
		}
	}
	val, _, err := managers.LoadOrNew(key, newManager)
	if err != nil {
		return err
	}
	s.managerKey = key
	mgd := val.(*managed)
	s.handler.Manager = mgd.Manager
	// The manager's metrics, into this config's registry (the admin endpoint's /metrics).
	if err := mgd.metrics.Register(ctx.GetMetricsRegistry()); err != nil {
		s.logger.Warn("registering the metrics", zap.Error(err))
	}
	s.handler.Meter = mgd.metrics
	settings.Listener = append(observe.Multi{mgd.metrics}, listeners...)
	s.release = s.handler.Manager.Configure(settings)
	return nil
}
