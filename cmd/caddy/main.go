// Command caddy is Caddy with its standard modules plus stream_downloads,
// the same binary `xcaddy build --with github.com/stream-downloads/caddy-stream-downloads` makes.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/stream-downloads/caddy-stream-downloads"
)

func main() {
	caddycmd.Main()
}
