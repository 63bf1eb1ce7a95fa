package handler

import (
	"go/build"
	"strings"
	"testing"
)

// TestImportsPackagerAlone holds the handler to its room (ARCHITECTURE.md): it speaks to
// the packager, which exports the types, states and errors it needs, and never to the
// packager's sub-packages (hls, storage, mp4, …), in its code or in its tests.
func TestImportsPackagerAlone(t *testing.T) {
	const module = "github.com/stream-downloads/caddy-stream-downloads"
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := false
	for _, imports := range [][]string{pkg.Imports, pkg.TestImports, pkg.XTestImports} {
		for _, p := range imports {
			if p == module+"/packager" {
				seen = true
			}
			if strings.HasPrefix(p, module+"/packager/") {
				t.Errorf("handler imports %s: use what package packager exports instead", p)
			}
		}
	}
	if !seen {
		t.Errorf("handler does not import %s/packager: the test looks at the wrong files", module)
	}
}
