package testcaddy

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TryLoad is Load for a config that may be rejected: it returns the error of adapting
// or loading it instead of failing the test (Caddy keeps the running config then).
func TryLoad(config string) error {
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(config), nil)
	if err != nil {
		return err
	}
	return caddy.Load(cfg, true)
}
