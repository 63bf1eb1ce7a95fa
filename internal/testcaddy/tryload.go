package testcaddy

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TryLoad is Load for a config that may be rejected: it returns the error of adapting
// or loading it instead of failing the test (Caddy keeps the running config then).
func TryLoad(config string) error {
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(config), nil)
	if err != nil {
		return fmt.Errorf("adapting Caddyfile: %w", err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		return err
	}
	// The servers of the old config closed their connections: a kept-alive one reused
	// by the tests' client would be reset, and so can a connection that the old server
	// accepted on the shared listener just before it stopped. Wait until every address
	// answers steadily, so that tests see the new config only.
	http.DefaultClient.CloseIdleConnections()
	for _, addr := range listenAddrs(cfg) {
		settle(addr)
	}
	return nil
}

// listenAddrs lists the TCP addresses of the HTTP servers of an adapted config.
func listenAddrs(cfg []byte) []string {
	var c struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Listen []string `json:"listen"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if json.Unmarshal(cfg, &c) != nil {
		return nil
	}
	var out []string
	for _, s := range c.Apps.HTTP.Servers {
		for _, l := range s.Listen {
			l = strings.TrimPrefix(l, "tcp/")
			if host, port, err := net.SplitHostPort(l); err == nil {
				if host == "" {
					host = "127.0.0.1"
				}
				out = append(out, net.JoinHostPort(host, port))
			}
		}
	}
	return out
}

// settle waits (two seconds at most) until eight requests in a row to addr, each on a
// new connection and 5 ms apart, get an answer. Three in a row were not always enough
// under load: a connection the old server accepted just before it stopped was still
// closed after them (seen once in CI, TestReloadStorageDir).
func settle(addr string) {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	ok := 0
	for try := 0; try < 100 && ok < 8; try++ {
		resp, err := client.Head("http://" + addr + "/")
		if err != nil {
			ok = 0
			time.Sleep(20 * time.Millisecond)
			continue
		}
		resp.Body.Close()
		ok++
		time.Sleep(5 * time.Millisecond)
	}
}
