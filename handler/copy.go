package handler

import (
	"io"
	"net/http"
	"syscall"
	"time"
)

// serveContent is http.ServeContent of content, which the response copies with
// sendfile when it is a file on disk. Any other content — a file served while it is
// packaged, a clip, a copy from the bucket — is copied through one buffer of the
// response's: Caddy's writer would hand each 64 KiB to the connection's ReadFrom, which
// allocates a buffer of its own every time (half a byte of garbage per byte sent; with
// 20 clients of an instant download the heap doubled, bench/README.md).
func serveContent(w http.ResponseWriter, r *http.Request, content io.ReadSeeker, modtime time.Time) {
	if !onDisk(content) {
		w = writeOnly{w}
	}
	http.ServeContent(w, r, "", modtime, content)
}

// onDisk tells content that is a file with a descriptor (sendfile can send it).
func onDisk(content io.ReadSeeker) bool {
	c, ok := content.(syscall.Conn)
	if !ok {
		return false
	}
	_, err := c.SyscallConn()
	return err == nil
}

// writeOnly is a ResponseWriter without the ReadFrom (and the other optional
// interfaces) of the one it wraps, so that io.Copy uses one buffer for the whole copy.
type writeOnly struct{ http.ResponseWriter }
