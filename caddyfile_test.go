package streamdownloads

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	cases := []struct {
		name  string
		input string
		want  StreamDownloads
		err   string // part of the error; empty: no error
	}{
		{
			name: "all options",
			input: `stream_downloads {
				origin https://origin.example/{video_id}/index.m3u8
				origin_header Authorization "Bearer x"
				origin_header X-Extra a
				storage_dir /var/lib/sd
				api_token t1
				api_token t2
				public_url https://edge.example/dl
				max_height 1080
				fetch_concurrency 16
				max_jobs 4
				require_signed_urls
				signing_key k1 /etc/keys/k1.pem
				signing_key k2 /etc/keys/k2.jwk
				geoip_db /var/lib/GeoLite2-Country.mmdb
				country_header CF-IPCountry
				max_storage 50GiB
				on_demand 10s
				allowed_hosts cdn.example *.media.example
				limits {
					playlist_size 1MiB
					segments 500
					segment_size 20MB
					output_size 2GiB
					duration 2h
				}
			}`,
			want: StreamDownloads{
				Origin:            "https://origin.example/{video_id}/index.m3u8",
				OriginHeader:      http.Header{"Authorization": {"Bearer x"}, "X-Extra": {"a"}},
				StorageDir:        "/var/lib/sd",
				APIToken:          []string{"t1", "t2"},
				PublicURL:         "https://edge.example/dl",
				MaxHeight:         1080,
				FetchConcurrency:  16,
				MaxJobs:           4,
				RequireSignedURLs: true,
				SigningKey:        []SigningKey{{"k1", "/etc/keys/k1.pem"}, {"k2", "/etc/keys/k2.jwk"}},
				GeoIPDB:           "/var/lib/GeoLite2-Country.mmdb",
				CountryHeader:     "CF-IPCountry",
				MaxStorage:        50 << 30,
				OnDemand:          caddy.Duration(10 * time.Second),
				AllowedHosts:      []string{"cdn.example", "*.media.example"},
				Limits: &Limits{PlaylistSize: 1 << 20, Segments: 500, SegmentSize: 20_000_000,
					OutputSize: 2 << 30, Duration: caddy.Duration(2 * time.Hour)},
			},
		},
		{name: "minimal", input: "stream_downloads {\n origin http://o/{video_id}.m3u8\n}", want: StreamDownloads{Origin: "http://o/{video_id}.m3u8"}},
		{name: "no origin", input: "stream_downloads {\n api_token x\n}", err: "origin: required"},
		{name: "relative origin", input: "stream_downloads {\n origin /x/{video_id}.m3u8\n}", err: "origin:"},
		{name: "unknown option", input: "stream_downloads {\n origin http://o/x\n colour blue\n}", err: `unknown option "colour"`},
		{name: "argument on directive", input: "stream_downloads extra {\n origin http://o/x\n}", err: "wrong argument count"},
		{name: "bad max_jobs", input: "stream_downloads {\n origin http://o/x\n max_jobs 0\n}", err: "max_jobs"},
		{name: "bad fetch_concurrency", input: "stream_downloads {\n origin http://o/x\n fetch_concurrency many\n}", err: "fetch_concurrency"},
		{name: "bad max_height", input: "stream_downloads {\n origin http://o/x\n max_height -1\n}", err: "max_height"},
		{name: "two values", input: "stream_downloads {\n origin http://o/x http://p/y\n}", err: "origin: takes one value"},
		{name: "missing value", input: "stream_downloads {\n origin http://o/x\n storage_dir\n}", err: "storage_dir: missing value"},
		{name: "header without value", input: "stream_downloads {\n origin http://o/x\n origin_header X-A\n}", err: "origin_header"},
		{name: "signing_key without file", input: "stream_downloads {\n origin http://o/x\n signing_key k1\n}", err: "signing_key: want <kid> <file>"},
		{name: "require_signed_urls with a value", input: "stream_downloads {\n origin http://o/x\n require_signed_urls yes\n}", err: "require_signed_urls: takes no value"},
		{name: "on_demand default", input: "stream_downloads {\n origin http://o/x\n on_demand\n}", want: StreamDownloads{Origin: "http://o/x", OnDemand: caddy.Duration(30 * time.Second)}},
		{name: "bad max_storage", input: "stream_downloads {\n origin http://o/x\n max_storage lots\n}", err: "max_storage"},
		{name: "bad on_demand", input: "stream_downloads {\n origin http://o/x\n on_demand soon\n}", err: "on_demand"},
		{name: "unknown limit", input: "stream_downloads {\n origin http://o/x\n limits {\n bitrate 5\n }\n}", err: `unknown option "bitrate" in limits`},
		{name: "bad segment_size", input: "stream_downloads {\n origin http://o/x\n limits {\n segment_size 0\n }\n}", err: "segment_size"},
		{name: "bad public_url", input: "stream_downloads {\n origin http://o/x\n public_url edge.example\n}", err: "public_url"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got StreamDownloads
			err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.input))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

// TestAdapt checks the directive needs no `order` line and adapts to the JSON config
// with the documented field names.
func TestAdapt(t *testing.T) {
	input := ":8080 {\n" +
		"\tstream_downloads /media/* {\n" +
		"\t\torigin http://origin/{video_id}/master.m3u8\n" +
		"\t\tapi_token secret\n" +
		"\t\tmax_jobs 3\n" +
		"\t}\n" +
		"\tfile_server\n" +
		"}\n"
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings: %v", warnings)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Match  []map[string]any `json:"match"`
						Handle []map[string]any `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	routes := cfg.Apps.HTTP.Servers["srv0"].Routes
	if len(routes) != 2 || routes[1].Handle[0]["handler"] != "file_server" {
		t.Fatalf("want stream_downloads, then file_server, got %s", out)
	}
	want := map[string]any{
		"handler":   "stream_downloads",
		"origin":    "http://origin/{video_id}/master.m3u8",
		"api_token": []any{"secret"},
		"max_jobs":  float64(3),
	}
	if !reflect.DeepEqual(routes[0].Handle[0], want) {
		t.Errorf("handler JSON %v, want %v", routes[0].Handle[0], want)
	}
	if !reflect.DeepEqual(routes[0].Match, []map[string]any{{"path": []any{"/media/*"}}}) {
		t.Errorf("matcher %v, want path /media/*", routes[0].Match)
	}
}

func TestValidate(t *testing.T) {
	ok := StreamDownloads{Origin: "http://o/{video_id}.m3u8", FetchConcurrency: 8, MaxJobs: 2}
	cases := []struct {
		name   string
		modify func(*StreamDownloads)
		err    string
	}{
		{"valid", func(*StreamDownloads) {}, ""},
		{"no origin", func(s *StreamDownloads) { s.Origin = "" }, "origin: required"},
		{"ftp origin", func(s *StreamDownloads) { s.Origin = "ftp://o/x" }, "origin:"},
		{"zero concurrency", func(s *StreamDownloads) { s.FetchConcurrency = 0 }, "fetch_concurrency"},
		{"zero jobs", func(s *StreamDownloads) { s.MaxJobs = 0 }, "max_jobs"},
		{"empty token", func(s *StreamDownloads) { s.APIToken = []string{""} }, "api_token"},
		{"bad public_url", func(s *StreamDownloads) { s.PublicURL = "x" }, "public_url"},
		{"private videos without keys", func(s *StreamDownloads) { s.RequireSignedURLs = true }, "require_signed_urls: needs at least one signing_key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := ok
			c.modify(&s)
			err := s.Validate()
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Errorf("error %v, want %q", err, c.err)
			}
		})
	}
}

func TestSizeJSON(t *testing.T) {
	for in, want := range map[string]Size{`1048576`: 1 << 20, `"50GiB"`: 50 << 30, `"500 MB"`: 500_000_000} {
		var z Size
		if err := json.Unmarshal([]byte(in), &z); err != nil || z != want {
			t.Errorf("%s: %d %v, want %d", in, z, err, want)
		}
	}
	var z Size
	if err := json.Unmarshal([]byte(`"lots"`), &z); err == nil {
		t.Error(`"lots" parsed as a size`)
	}
}
