// Package testcaddy runs the real Caddy, in the test's process, from a Caddyfile.
package testcaddy

import (
	"testing"

	"github.com/caddyserver/caddy/v2"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile" // the caddyfile adapter
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/stream-downloads/caddy-stream-downloads"
)

// Caddyfile prefixes body with the global options every test config needs (no admin
// endpoint, no automatic HTTPS, nothing installed into trust stores) and the extra
// global options given, one per line.
func Caddyfile(body string, globals ...string) string {
	g := "\tadmin off\n\tpersist_config off\n\tauto_https off\n\tskip_install_trust\n\tlog {\n\t\tlevel WARN\n\t}\n"
	for _, o := range globals {
		g += "\t" + o + "\n"
	}
	return "{\n" + g + "}\n" + body
}

// Start runs config (a Caddyfile made with Caddyfile) in this process's Caddy,
// replacing what ran before, as `caddy run`/`caddy reload` would, and stops it when the
// test ends. caddytest's Tester is not used because it skips, rather than fails, when
// its own prerequisites are missing. Integration tests do not run with -short.
func Start(t testing.TB, config string) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: runs without -short")
	}
	Load(t, config)
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Errorf("stopping caddy: %v", err)
		}
	})
}

// Load loads config into the running Caddy (a reload), or starts it.
func Load(t testing.TB, config string) {
	t.Helper()
	if err := TryLoad(config); err != nil {
		t.Fatalf("loading config: %v", err)
	}
}
