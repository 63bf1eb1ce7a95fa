package mp4

import (
	"container/list"
	"io"
	"sync"
)

// ClipCache keeps the parsed sample tables of recently clipped files, so that the Range
// requests of one clip parse the stored file's moov once. It is bounded by the bytes
// the sources hold (ClipSource.Memory) and safe for concurrent use.
type ClipCache struct {
	mu    sync.Mutex
	max   int64
	used  int64
	lru   *list.List // of *clipCacheEntry, most recent first
	byKey map[string]*list.Element
}

type clipCacheEntry struct {
	key string
	src *ClipSource
	mem int64
}

// NewClipCache returns a cache holding up to maxBytes of sources (a source larger than
// that is parsed for each request and not kept).
func NewClipCache(maxBytes int64) *ClipCache {
	return &ClipCache{max: maxBytes, lru: list.New(), byKey: map[string]*list.Element{}}
}

// Source returns the source of key (which names the stored file's bytes: its strong
// ETag, say), parsing it from r (size bytes) when it is not cached.
func (c *ClipCache) Source(key string, r io.ReaderAt, size int64) (*ClipSource, error) {
	c.mu.Lock()
	if e, ok := c.byKey[key]; ok {
		c.lru.MoveToFront(e)
		src := e.Value.(*clipCacheEntry).src
		c.mu.Unlock()
		return src, nil
	}
	c.mu.Unlock()
	src, err := ReadClipSource(r, size)
	if err != nil {
		return nil, err
	}
	mem := src.Memory()
	if mem > c.max {
		return src, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byKey[key]; ok { // parsed meanwhile by another request
		return src, nil
	}
	c.byKey[key] = c.lru.PushFront(&clipCacheEntry{key, src, mem})
	c.used += mem
	for c.used > c.max {
		e := c.lru.Back()
		ent := e.Value.(*clipCacheEntry)
		c.lru.Remove(e)
		delete(c.byKey, ent.key)
		c.used -= ent.mem
	}
	return src, nil
}

// SeekReaderAt reads r at offsets by seeking it (for a file that is no io.ReaderAt); it
// is not safe for concurrent use, and moves r.
type SeekReaderAt struct{ R io.ReadSeeker }

// ReadAt reads len(p) bytes at off.
func (s SeekReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if _, err := s.R.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	return io.ReadFull(s.R, p)
}
