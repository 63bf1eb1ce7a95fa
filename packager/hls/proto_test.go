package hls

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestFetchOverHTTPS: against an HTTPS origin that speaks HTTP/2, the parallel part
// requests still go out over as many HTTP/1.1 connections (each with its own share of a
// distant origin's bandwidth), not as streams of one HTTP/2 connection.
func TestFetchOverHTTPS(t *testing.T) {
	t.Parallel()
	seg := bytes.Repeat([]byte("0123456789abcdef"), 4*4096/16) // 4 parts
	var mu sync.Mutex
	protos := map[string]int{}
	conns := map[string]bool{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		protos[r.Proto]++
		conns[r.RemoteAddr] = true
		mu.Unlock()
		if r.URL.Path == "/v.m3u8" {
			io.WriteString(w, "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\ns.ts\n#EXTINF:4,\ns.ts?2\n#EXT-X-ENDLIST\n")
			return
		}
		time.Sleep(20 * time.Millisecond) // so that the parts overlap
		http.ServeContent(w, r, "s.ts", time.Time{}, bytes.NewReader(seg))
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	tr := newTransport()
	tr.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	defer tr.CloseIdleConnections()
	c := quick(&Client{HTTP: &http.Client{Transport: tr}})
	c.tune = partTuning(4096)
	src, err := c.Resolve(context.Background(), srv.URL+"/v.m3u8", SelectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := fetchBodies(c, src.Segments, 4)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range got {
		if !bytes.Equal(b, seg) {
			t.Errorf("segment %d: %d bytes, not the source", i, len(b))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if protos["HTTP/1.1"] == 0 || len(protos) != 1 || len(conns) < 3 {
		t.Errorf("requests by protocol %v over %d connections: want HTTP/1.1 only, over several", protos, len(conns))
	}
}

// TestNewHTTPClient: each caller gets its own client and transport (HTTP/1.1 only),
// which a Client given it uses instead of the package default.
func TestNewHTTPClient(t *testing.T) {
	t.Parallel()
	a, b := NewHTTPClient(), NewHTTPClient()
	if a == b || a.Transport == b.Transport {
		t.Fatal("NewHTTPClient shares its client or transport")
	}
	tr := a.Transport.(*http.Transport)
	if tr.Protocols == nil || !tr.Protocols.HTTP1() || tr.Protocols.HTTP2() {
		t.Errorf("protocols %v, want HTTP/1.1 only", tr.Protocols)
	}
	if c := (&Client{HTTP: a}); c.httpClient() != a {
		t.Error("the Client does not use its HTTP client")
	}
	if c := (&Client{}); c.httpClient() != defaultHTTP() {
		t.Error("a Client without one does not use the package default")
	}
}
