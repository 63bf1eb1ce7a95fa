package testutil

import (
	"maps"
	"sync"
)

// requestCounts counts the requests of each path of a test origin; safe for concurrent
// use. Embedded, it gives the origin its Count and Counts methods.
type requestCounts struct {
	mu sync.Mutex
	n  map[string]int
}

// add counts one request of path and returns how many it has had.
func (c *requestCounts) add(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[path]++
	return c.n[path]
}

// Count returns how many requests path got.
func (c *requestCounts) Count(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[path]
}

// Counts returns a copy of the request count of every path.
func (c *requestCounts) Counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}
