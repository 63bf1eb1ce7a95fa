package testcaddy

import (
	"fmt"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"net/http"
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
	// The servers of the old config closed their connections; a kept-alive one reused
	// by the tests' client would be reset.
	http.DefaultClient.CloseIdleConnections()
	return nil
}
