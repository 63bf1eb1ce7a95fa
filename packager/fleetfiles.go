package packager

import (
	"context"
	"errors"
	"io"
	"strings"

	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage/bucket"
)

// The packaged files of a fleet: the bucket's copy is the download; an instance
// delivers from its local copy when it has one, else by ranged reads of the bucket while
// a local copy is made in the background (when max_storage leaves room).

// openRemote opens d's file in the bucket for delivery, and starts copying it into the
// local store. Call without m.mu.
func (m *Manager) openRemote(ctx context.Context, k storage.Key, d *download) (storage.File, error) {
	m.mu.Lock()
	key, etag, size, ready := d.fleet.file, d.fleet.fileETag, d.rec.Size, d.rec.Ready
	m.mu.Unlock()
	if key == "" {
		return nil, unreachable("opening the packaged file", errors.New("the download's object names no file"))
	}
	m.cacheLater(k, d)
	// The request's context: the body is read while the response is sent.
	return m.fleet.conf().Bucket.NewReader(ctx, key, size, etag, ready), nil
}

// cacheLater copies d's file from the bucket into the local store, once at a time per
// download, unless max_storage has no room for it (the evictor would remove files in use
// for one that may be used once).
func (m *Manager) cacheLater(k storage.Key, d *download) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d.fleet.caching || d.fleet.cached || m.ctx.Err() != nil {
		return
	}
	if limit := m.settings.MaxStorage; limit > 0 && m.used()+d.rec.Size > limit {
		return
	}
	d.fleet.caching = true
	m.sched.jobs.Add(1)
	go func() {
		defer m.sched.jobs.Done()
		err := m.cache(k, d)
		m.mu.Lock()
		d.fleet.caching = false
		if err == nil && m.downloads[k] == d {
			d.fleet.cached = true
			m.evict(d)
		}
		m.mu.Unlock()
		m.flush()
		if err != nil {
			m.log.Warn("fleet: copying a packaged file from the bucket", zap.String("video", k.Video), zap.String("type", k.Type), zap.Error(err))
		}
	}()
}

// cache copies d's file into the local store, with its record.
func (m *Manager) cache(k storage.Key, d *download) error {
	m.mu.Lock()
	rec, key, etag := d.rec, d.fleet.file, d.fleet.fileETag
	m.mu.Unlock()
	r := m.fleet.conf().Bucket.NewReader(m.ctx, key, rec.Size, etag, rec.Ready)
	defer r.Close()
	st, err := m.store.Stage(k)
	if err != nil {
		return err
	}
	defer st.Discard()
	n, err := io.Copy(io.NewOffsetWriter(st, 0), r)
	if err != nil {
		return err
	}
	if n != rec.Size {
		return io.ErrUnexpectedEOF
	}
	if err := st.Commit(); err != nil {
		return err
	}
	return m.store.SaveRecord(rec)
}

// removeObjects removes k's object, marker and files from the bucket: a Delete, or a
// creation refused. An instance packaging it learns it at its next renewal and stops.
func (m *Manager) removeObjects(k storage.Key) error {
	ctx, cancel := context.WithTimeout(m.ctx, bucketTimeout)
	defer cancel()
	b := m.fleet.conf().Bucket
	err := b.Delete(ctx, docKey(k))
	if err != nil {
		return unreachable("deleting the download", err)
	}
	keys, lerr := b.Keys(ctx, filePrefix(k))
	err = lerr
	for _, key := range keys {
		err = errors.Join(err, b.Delete(ctx, key))
	}
	err = errors.Join(err, b.Delete(ctx, markerKey(k)))
	if err != nil {
		// The object is gone, so the download is; what is left costs storage only.
		m.log.Warn("fleet: removing the files of a deleted download", zap.String("video", k.Video), zap.String("type", k.Type), zap.Error(err))
	}
	return nil
}

// deleteObjects removes from the bucket the downloads of video whose type is in types
// (all it has objects for when empty), and returns their keys. Without a fleet it does
// nothing.
func (m *Manager) deleteObjects(ctx context.Context, video string, types []string) ([]storage.Key, error) {
	if m.fleet == nil {
		return nil, nil
	}
	if len(types) == 0 {
		var err error
		if types, err = m.bucketTypes(ctx, video); err != nil {
			return nil, unreachable("listing the video's downloads", err)
		}
	}
	var found []storage.Key
	for _, typ := range types {
		k := storage.Key{Video: video, Type: typ}
		_, _, err := m.fleet.read(ctx, k)
		switch {
		case errors.Is(err, bucket.ErrNotExist):
			continue
		case err != nil:
			return nil, unreachable("reading the download", err)
		}
		if err := m.removeObjects(k); err != nil {
			return nil, err
		}
		found = append(found, k)
	}
	return found, nil
}

// bucketTypes returns the types of video's downloads that have an object in the bucket.
func (m *Manager) bucketTypes(ctx context.Context, video string) ([]string, error) {
	prefix := docPrefix(video)
	keys, err := m.fleet.conf().Bucket.Keys(ctx, prefix)
	var types []string
	for _, key := range keys {
		typ, ok := strings.CutSuffix(strings.TrimPrefix(key, prefix), ".json")
		if ok && validKey(video, typ) {
			types = append(types, typ)
		}
	}
	return types, err
}
