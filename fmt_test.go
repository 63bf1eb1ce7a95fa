package streamdownloads_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile" // the caddyfile adapter
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	streamdownloads "github.com/stream-downloads/caddy-stream-downloads"
	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// TestCaddyfilesFormatted: every Caddyfile in testdata/ and every ```caddyfile block of
// README.md and docs/*.md is what `caddy fmt` makes of it (caddyfile.Format gives back the
// same bytes) and adapts without an error or a warning. A block that is a fragment is
// wrapped before adapting, never before formatting (see wrapFragment).
func TestCaddyfilesFormatted(t *testing.T) {
	root := testutil.RepoRoot(t)
	type input struct {
		name, text string
	}
	var inputs []input
	err := filepath.WalkDir(filepath.Join(root, "testdata"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && name == "fuzz" {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasPrefix(name, "Caddyfile") || strings.HasSuffix(strings.ToLower(name), ".caddyfile")) {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			inputs = append(inputs, input{rel, string(b)})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatal("no Caddyfile in testdata/: the test looks in the wrong place")
	}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	blocks := 0
	for _, p := range append([]string{filepath.Join(root, "README.md")}, docs...) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		for _, blk := range caddyfileBlocks(string(b)) {
			inputs = append(inputs, input{rel + ":" + strconv.Itoa(blk.line), blk.text})
			blocks++
		}
	}
	if blocks == 0 {
		t.Fatal("no ```caddyfile block in README.md and docs/*.md: the test looks in the wrong place")
	}

	for _, in := range inputs {
		t.Run(in.name, func(t *testing.T) {
			if got := caddyfile.Format([]byte(in.text)); !bytes.Equal(got, []byte(in.text)) {
				t.Errorf("caddy fmt changes it:\n%s", lineDiff(in.text, string(got)))
			}
			text, how := wrapFragment(in.text)
			if how != "" {
				t.Logf("a fragment: adapted %s", how)
			}
			_, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(text), map[string]any{"filename": in.name})
			if err != nil {
				t.Errorf("caddy adapt: %v", err)
			}
			for _, w := range warnings {
				if !strings.Contains(w.Message, "not formatted") { // the check above says how
					t.Errorf("caddy adapt warns: %s", w.String())
				}
			}
		})
	}
}

// TestInstallJSON: the JSON config of README.md is a valid Caddy config whose
// stream_downloads handler has only options the module knows.
func TestInstallJSON(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(string(b), -1)
	found := 0
	for _, blk := range m {
		var cfg struct {
			Apps struct {
				HTTP struct {
					Servers map[string]struct {
						Listen []string
						Routes []struct {
							Handle []json.RawMessage
						}
					}
				}
			}
		}
		if err := json.Unmarshal([]byte(blk[1]), &cfg); err != nil {
			t.Errorf("a ```json block is not JSON: %v", err)
			continue
		}
		for _, srv := range cfg.Apps.HTTP.Servers {
			for _, r := range srv.Routes {
				for _, h := range r.Handle {
					var kind struct{ Handler string }
					json.Unmarshal(h, &kind)
					if kind.Handler != "stream_downloads" {
						continue
					}
					found++
					var obj map[string]json.RawMessage
					json.Unmarshal(h, &obj)
					delete(obj, "handler")
					rest, _ := json.Marshal(obj)
					dec := json.NewDecoder(bytes.NewReader(rest))
					dec.DisallowUnknownFields()
					var s streamdownloads.StreamDownloads
					if err := dec.Decode(&s); err != nil {
						t.Errorf("the stream_downloads handler of the JSON example: %v", err)
					}
					if s.Origin == "" {
						t.Errorf("the JSON example has no origin")
					}
				}
			}
		}
	}
	if found == 0 {
		t.Fatal("no stream_downloads handler in a ```json block of README.md")
	}
}

type mdBlock struct {
	line int // of the opening fence
	text string
}

// caddyfileBlocks returns the ```caddyfile blocks of a Markdown text.
func caddyfileBlocks(md string) []mdBlock {
	var out []mdBlock
	lines := strings.SplitAfter(md, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```caddyfile" {
			continue
		}
		b := mdBlock{line: i + 1}
		var sb strings.Builder
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			sb.WriteString(lines[i])
		}
		b.text = sb.String()
		out = append(out, b)
	}
	return out
}

// wrapFragment makes a block that is not a whole Caddyfile into one, and says how ("" when
// it is one already). By its first directive (comments skipped):
//   - stream_downloads (or another handler directive: a site's body without the site):
//     inside a site, `:8080 { … }`;
//   - an option of stream_downloads (origin, store, limits, notify_url, …): inside
//     `stream_downloads { origin … }` inside that site; the stand-in origin is given only
//     when the block has none.
//
// A block that starts with a site address, a global options block or a snippet is whole.
func wrapFragment(text string) (string, string) {
	first := ""
	for _, line := range strings.Split(text, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			first = strings.Fields(l)[0]
			break
		}
	}
	site := func(body string) string {
		return ":8080 {\n" + indent(body) + "}\n"
	}
	switch {
	case first == "stream_downloads" || first == "handle" || first == "route" || first == "reverse_proxy":
		return site(text), "inside a site (:8080 { … })"
	case streamDownloadsOption[first]:
		body := text
		if !regexp.MustCompile(`(?m)^\s*origin\s`).MatchString(text) {
			body = "origin https://origin.example.com/videos/{video_id}/master.m3u8\n" + body
		}
		return site("stream_downloads {\n" + indent(body) + "}\n"), "inside stream_downloads { … } inside a site (:8080 { … })"
	}
	return text, ""
}

// streamDownloadsOption: the subdirectives of stream_downloads, which start a fragment
// of its block.
var streamDownloadsOption = map[string]bool{}

func init() {
	for _, o := range strings.Fields(`origin origin_header storage_dir api_token public_url max_height
		types languages fetch_concurrency max_jobs max_queue create_wait require_signed_urls signing_key geoip_db
		country_header max_storage on_demand on_demand_client_rate on_demand_rate allowed_hosts
		notify_url notify_secret limits store`) {
		streamDownloadsOption[o] = true
	}
}

// indent puts a tab before every non-empty line of s, which ends with a newline.
func indent(s string) string {
	var sb strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if strings.TrimSpace(l) != "" {
			sb.WriteString("\t")
		}
		sb.WriteString(l)
	}
	if !strings.HasSuffix(sb.String(), "\n") {
		sb.WriteString("\n")
	}
	return sb.String()
}

// lineDiff lists the lines of a and b that differ, by line number.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var sb strings.Builder
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			sb.WriteString("line " + strconv.Itoa(i+1) + ":\n\t- " + strings.ReplaceAll(x, "\t", "→") + "\n\t+ " + strings.ReplaceAll(y, "\t", "→") + "\n")
		}
	}
	return sb.String()
}
