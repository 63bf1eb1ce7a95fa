// Command shapedorigin serves a directory over HTTP like a distant origin: every response
// starts after a fixed delay and each connection is throttled to a fixed bit rate. The
// benchmark (bench/run.sh) puts it in front of the same files for ffmpeg and for the
// module, so both pay the same latency and per-connection bandwidth.
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"time"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:8091", "address to listen on")
	dir := flag.String("dir", ".", "directory to serve")
	delay := flag.Duration("delay", 40*time.Millisecond, "added before every response")
	rate := flag.Float64("mbps", 50, "per-connection throughput cap in Mb/s")
	flag.Parse()

	bytesPerSec := *rate * 1e6 / 8
	files := http.FileServer(http.Dir(*dir))
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(*delay)
			files.ServeHTTP(w, r)
		}),
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("serving %s on %s: +%v per response, %.0f Mb/s per connection", *dir, *addr, *delay, *rate)
	log.Fatal(srv.Serve(throttledListener{ln, bytesPerSec}))
}

// throttledListener hands out connections whose writes are paced to a byte rate.
type throttledListener struct {
	net.Listener
	bytesPerSec float64
}

func (l throttledListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &throttledConn{Conn: c, bytesPerSec: l.bytesPerSec}, nil
}

// throttledConn paces writes: after each chunk it sleeps until the bytes sent so far
// fit the rate, measured from the connection's first write of the current burst.
type throttledConn struct {
	net.Conn
	bytesPerSec float64
	start       time.Time
	sent        float64
}

const chunk = 16 << 10

func (c *throttledConn) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), chunk)
		now := time.Now()
		// An idle connection (keep-alive between requests) starts a new burst, so idle
		// time is not banked as credit.
		if c.start.IsZero() || now.Sub(c.start).Seconds() > c.sent/c.bytesPerSec+0.1 {
			c.start, c.sent = now, 0
		}
		m, err := c.Conn.Write(p[:n])
		written += m
		c.sent += float64(m)
		if err != nil {
			return written, err
		}
		p = p[n:]
		if due := c.start.Add(time.Duration(c.sent / c.bytesPerSec * float64(time.Second))); due.After(time.Now()) {
			time.Sleep(time.Until(due))
		}
	}
	return written, nil
}
