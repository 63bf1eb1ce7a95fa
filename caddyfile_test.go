package streamdownloads

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
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
				types default audio 1080p
				types 720p
				languages en pt-BR
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
				Types:             []string{"default", "audio", "1080p", "720p"},
				Languages:         []string{"en", "pt-BR"},
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
		{name: "languages without values", input: "stream_downloads {\n origin http://o/x\n languages\n}", err: "languages: missing language tags"},
		{name: "languages of no tag", input: "stream_downloads {\n origin http://o/x\n languages en fr_FR\n}", err: `languages: "fr_FR" is not a language tag`},
		{name: "types without values", input: "stream_downloads {\n origin http://o/x\n types\n}", err: "types: missing download types"},
		{name: "types of no type", input: "stream_downloads {\n origin http://o/x\n types default abc\n}", err: `types: "abc" is not a download type`},
		{name: "types of a height with a leading zero", input: "stream_downloads {\n origin http://o/x\n types 0720p\n}", err: `types: "0720p" is not a download type`},
		{name: "types of too tall a height", input: "stream_downloads {\n origin http://o/x\n types 9000p\n}", err: `types: "9000p" is not a download type`},
		{name: "types placeholder checked at load", input: "stream_downloads {\n origin http://o/x\n types {env.TYPES} 720p\n}",
			want: StreamDownloads{Origin: "http://o/x", Types: []string{"{env.TYPES}", "720p"}}},
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
		// Load-time placeholders are kept as written (expanded by Provision, so that no
		// secret lands in the adapted JSON); a URL holding one is checked then.
		{
			name: "placeholders",
			input: `stream_downloads {
				origin {env.ORIGIN}/{video_id}/master.m3u8
				origin_header Authorization "Bearer {env.ORIGIN_TOKEN}"
				storage_dir {env.STATE_DIRECTORY}/sd
				api_token {env.DOWNLOADS_API_TOKEN}
				api_token {file./run/secrets/token}
				public_url {env.PUBLIC_URL}
				signing_key {env.KID} {file./run/secrets/k1.pem}
				geoip_db {env.GEOIP_DB}
				country_header {env.COUNTRY_HEADER}
				allowed_hosts {env.CDN_HOSTS}
			}`,
			want: StreamDownloads{
				Origin:        "{env.ORIGIN}/{video_id}/master.m3u8",
				OriginHeader:  http.Header{"Authorization": {"Bearer {env.ORIGIN_TOKEN}"}},
				StorageDir:    "{env.STATE_DIRECTORY}/sd",
				APIToken:      []string{"{env.DOWNLOADS_API_TOKEN}", "{file./run/secrets/token}"},
				PublicURL:     "{env.PUBLIC_URL}",
				SigningKey:    []SigningKey{{"{env.KID}", "{file./run/secrets/k1.pem}"}},
				GeoIPDB:       "{env.GEOIP_DB}",
				CountryHeader: "{env.COUNTRY_HEADER}",
				AllowedHosts:  []string{"{env.CDN_HOSTS}"},
			},
		},
		{
			name: "store s3",
			input: `stream_downloads {
				origin http://o/{video_id}.m3u8
				store s3 {
					endpoint https://s3.example.com:9000
					bucket downloads
					region eu-west-1
					prefix fleet/a
					access_key AKID
					secret_key {env.S3_SECRET}
					path_style
					lease 45s
					node edge-1.example
				}
			}`,
			want: StreamDownloads{Origin: "http://o/{video_id}.m3u8", Store: &Store{S3: &S3Store{
				Endpoint: "https://s3.example.com:9000", Bucket: "downloads", Region: "eu-west-1", Prefix: "fleet/a",
				AccessKey: "AKID", SecretKey: "{env.S3_SECRET}", PathStyle: true,
				Lease: caddy.Duration(45 * time.Second), Node: "edge-1.example",
			}}},
		},
		{
			name:  "store s3 minimal",
			input: "stream_downloads {\n origin http://o/x\n store s3 {\n endpoint http://127.0.0.1:9000\n bucket bk1\n access_key a\n secret_key s3cr3t-key\n }\n}",
			want:  StreamDownloads{Origin: "http://o/x", Store: &Store{S3: &S3Store{Endpoint: "http://127.0.0.1:9000", Bucket: "bk1", AccessKey: "a", SecretKey: "s3cr3t-key"}}},
		},
		{
			name:  "store s3 placeholders checked at load",
			input: "stream_downloads {\n origin http://o/x\n store s3 {\n endpoint {env.S3_ENDPOINT}\n bucket {env.S3_BUCKET}\n prefix {env.S3_PREFIX}\n access_key {file./run/secrets/ak}\n secret_key {file./run/secrets/sk}\n node {env.HOSTNAME}\n }\n}",
			want: StreamDownloads{Origin: "http://o/x", Store: &Store{S3: &S3Store{Endpoint: "{env.S3_ENDPOINT}", Bucket: "{env.S3_BUCKET}", Prefix: "{env.S3_PREFIX}",
				AccessKey: "{file./run/secrets/ak}", SecretKey: "{file./run/secrets/sk}", Node: "{env.HOSTNAME}"}}},
		},
		{name: "store without kind", input: "stream_downloads {\n origin http://o/x\n store {\n endpoint http://h\n }\n}", err: "store: missing the kind of store"},
		{name: "store of another kind", input: "stream_downloads {\n origin http://o/x\n store gcs {\n endpoint http://h\n }\n}", err: `store: unknown kind "gcs"`},
		{name: "store s3 without block", input: "stream_downloads {\n origin http://o/x\n store s3\n}", err: "store s3: missing its block"},
		{name: "store s3 empty block", input: "stream_downloads {\n origin http://o/x\n store s3 {\n }\n}", err: "store s3: missing its block"},
		{name: "store s3 with values", input: "stream_downloads {\n origin http://o/x\n store s3 mybucket {\n endpoint http://h\n }\n}", err: "store s3: takes a block, not values"},
		{name: "store twice", input: "stream_downloads {\n origin http://o/x\n store s3 {\n endpoint http://h\n bucket bk1\n access_key a\n secret_key s3cr3t-key\n }\n store s3 {\n endpoint http://h\n }\n}", err: "store: given twice"},
		{name: "store s3 unknown option", input: "stream_downloads {\n origin http://o/x\n store s3 {\n endpoint http://h\n colour blue\n }\n}", err: `unknown option "colour" in store s3`},
		{name: "store s3 path_style with a value", input: "stream_downloads {\n origin http://o/x\n store s3 {\n endpoint http://h\n path_style true\n }\n}", err: "store s3 path_style: takes no value"},
		{name: "store s3 missing value", input: "stream_downloads {\n origin http://o/x\n store s3 {\n endpoint\n }\n}", err: "store s3 endpoint: missing value"},
		{name: "store s3 two values", input: "stream_downloads {\n origin http://o/x\n store s3 {\n bucket a b\n }\n}", err: "store s3 bucket: takes one value"},
		{name: "store s3 no endpoint", input: "stream_downloads {\n origin http://o/x\n store s3 {\n bucket bk1\n access_key a\n secret_key s3cr3t-key\n }\n}", err: "store s3 endpoint: required"},
		{name: "store s3 no bucket", input: "stream_downloads {\n origin http://o/x\n store s3 {\n endpoint http://h\n access_key a\n secret_key s3cr3t-key\n }\n}", err: "store s3 bucket: required"},
		{name: "store s3 no access_key", input: "stream_downloads {\n origin http://o/x\n store s3 {\n endpoint http://h\n bucket bk1\n secret_key s3cr3t-key\n }\n}", err: "store s3 access_key: required"},
		{name: "store s3 no secret_key", input: "stream_downloads {\n origin http://o/x\n store s3 {\n endpoint http://h\n bucket bk1\n access_key a\n }\n}", err: "store s3 secret_key: required"},
		{name: "store s3 endpoint not a URL", input: "stream_downloads {\n origin http://o/x\n store s3 {\n endpoint s3.example.com\n bucket bk1\n access_key a\n secret_key s3cr3t-key\n }\n}", err: "store s3 endpoint: "},
		{name: "store s3 endpoint with a path", input: "stream_downloads {\n origin http://o/x\n store s3 {\n endpoint http://h/b1\n bucket bk1\n access_key a\n secret_key s3cr3t-key\n }\n}", err: "store s3 endpoint: "},
		{name: "store s3 bad bucket", input: "stream_downloads {\n origin http://o/x\n store s3 {\n endpoint http://h\n bucket -bad-\n access_key a\n secret_key s3cr3t-key\n }\n}", err: "store s3 bucket: "},
		{name: "store s3 bad prefix", input: "stream_downloads {\n origin http://o/x\n store s3 {\n endpoint http://h\n bucket bk1\n prefix /a\n access_key a\n secret_key s3cr3t-key\n }\n}", err: "store s3 prefix: "},
		{name: "store s3 short lease", input: "stream_downloads {\n origin http://o/x\n store s3 {\n lease 2s\n }\n}", err: "store s3 lease: "},
		{name: "store s3 bad lease", input: "stream_downloads {\n origin http://o/x\n store s3 {\n lease soon\n }\n}", err: "store s3 lease: "},
		{name: "store s3 bad node", input: "stream_downloads {\n origin http://o/x\n store s3 {\n endpoint http://h\n bucket bk1\n access_key a\n secret_key s3cr3t-key\n node a/b\n }\n}", err: "store s3 node: "},
		{name: "origin host per request", input: "stream_downloads {\n origin https://{http.request.host}/hls/{video_id}.m3u8\n}", want: StreamDownloads{Origin: "https://{http.request.host}/hls/{video_id}.m3u8"}},
		{name: "public_url without a placeholder is checked", input: "stream_downloads {\n origin http://o/x\n public_url {http.request.host}\n}", err: "public_url"},
		{name: "notify_url and notify_secret", input: "stream_downloads {\n origin http://o/x\n notify_url https://app.example/hook\n notify_url http://127.0.0.1:9/h?k=1\n notify_secret 0123456789abcdef\n}",
			want: StreamDownloads{Origin: "http://o/x", NotifyURL: []string{"https://app.example/hook", "http://127.0.0.1:9/h?k=1"}, NotifySecret: "0123456789abcdef"}},
		{name: "notify placeholders", input: "stream_downloads {\n origin http://o/x\n notify_url {env.HOOK_URL}\n notify_secret {file./run/secrets/hook}\n}",
			want: StreamDownloads{Origin: "http://o/x", NotifyURL: []string{"{env.HOOK_URL}"}, NotifySecret: "{file./run/secrets/hook}"}},
		{name: "notify_url not a URL", input: "stream_downloads {\n origin http://o/x\n notify_url app.example/hook\n notify_secret 0123456789abcdef\n}", err: "notify_url: "},
		{name: "notify_url ftp", input: "stream_downloads {\n origin http://o/x\n notify_url ftp://app.example/hook\n notify_secret 0123456789abcdef\n}", err: "notify_url: "},
		{name: "notify_url two values", input: "stream_downloads {\n origin http://o/x\n notify_url http://a/ http://b/\n notify_secret 0123456789abcdef\n}", err: "notify_url: takes one value"},
		{name: "notify_url without notify_secret", input: "stream_downloads {\n origin http://o/x\n notify_url http://a/\n}", err: "notify_url: needs notify_secret"},
		{name: "notify_secret without notify_url", input: "stream_downloads {\n origin http://o/x\n notify_secret 0123456789abcdef\n}", err: "notify_secret: set without notify_url"},
		{name: "notify_secret twice", input: "stream_downloads {\n origin http://o/x\n notify_url http://a/\n notify_secret 0123456789abcdef\n notify_secret 0123456789abcdeg\n}", err: "notify_secret: given twice"},
		{name: "notify_secret missing value", input: "stream_downloads {\n origin http://o/x\n notify_url http://a/\n notify_secret\n}", err: "notify_secret: missing value"},
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
	out, routes := adaptRoutes(t, input)
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

// TestAdaptKeepsSecretsOut: adapting a Caddyfile whose secrets are placeholders keeps
// the placeholders, not the values the environment has where it is adapted.
func TestAdaptKeepsSecretsOut(t *testing.T) {
	const secret = "value-of-the-environment"
	t.Setenv("SD_ADAPT_TOKEN", secret)
	t.Setenv("SD_ADAPT_ORIGIN", "https://origin.example")
	input := ":8080 {\n" +
		"\tstream_downloads {\n" +
		"\t\torigin {env.SD_ADAPT_ORIGIN}/{video_id}/master.m3u8\n" +
		"\t\tapi_token {env.SD_ADAPT_TOKEN}\n" +
		"\t\torigin_header Authorization \"Bearer {env.SD_ADAPT_TOKEN}\"\n" +
		"\t}\n" +
		"}\n"
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), secret) || strings.Contains(string(out), "origin.example") {
		t.Errorf("the adapted JSON holds values of the environment: %s", out)
	}
	for _, want := range []string{`"api_token":["{env.SD_ADAPT_TOKEN}"]`, `"origin":"{env.SD_ADAPT_ORIGIN}/{video_id}/master.m3u8"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the adapted JSON lacks %s: %s", want, out)
		}
	}
}

// TestExpandPlaceholders: Provision's expansion of every string option, and of string
// options added later (walked by reflection): {env.*}, {file.*} and {system.*} are
// expanded; the origin keeps its per-request placeholders.
func TestExpandPlaceholders(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SD_X", "x-value")
	t.Setenv("SD_HOST", "origin.example")
	s := StreamDownloads{
		Origin:        "https://{env.SD_HOST}/{http.request.host}/{video_id}/{time.now.unix}.m3u8",
		OriginHeader:  http.Header{"Authorization": {"Bearer {env.SD_X}", "second {file." + tokenFile + "}"}},
		StorageDir:    "/var/{env.SD_X}",
		APIToken:      []string{"{env.SD_X}", "{file." + tokenFile + "}", "plain"},
		PublicURL:     "https://{env.SD_X}.example",
		SigningKey:    []SigningKey{{"k-{env.SD_X}", "/keys/{env.SD_X}.pem"}},
		GeoIPDB:       "{env.SD_X}.mmdb",
		CountryHeader: "X-{env.SD_X}",
		AllowedHosts:  []string{"{env.SD_X}.cdn", "a\\{b\\}"},
		Limits:        &Limits{Segments: 5},
	}
	raw := s.OriginHeader["Authorization"][0]
	if err := s.expandPlaceholders(); err != nil {
		t.Fatal(err)
	}
	want := StreamDownloads{
		Origin:        "https://origin.example/{http.request.host}/{video_id}/{time.now.unix}.m3u8",
		OriginHeader:  http.Header{"Authorization": {"Bearer x-value", "second file-token"}},
		StorageDir:    "/var/x-value",
		APIToken:      []string{"x-value", "file-token", "plain"},
		PublicURL:     "https://x-value.example",
		SigningKey:    []SigningKey{{"k-x-value", "/keys/x-value.pem"}},
		GeoIPDB:       "x-value.mmdb",
		CountryHeader: "X-x-value",
		AllowedHosts:  []string{"x-value.cdn", "a{b}"},
		Limits:        &Limits{Segments: 5},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
	if raw != "Bearer {env.SD_X}" {
		t.Errorf("the configured header was changed in place: %q", raw)
	}

	// Every string the options hold, in whatever field, is expanded.
	var all StreamDownloads
	fillStrings(reflect.ValueOf(&all).Elem(), "{env.SD_X}")
	if err := all.expandPlaceholders(); err != nil {
		t.Fatal(err)
	}
	if left := findStrings(reflect.ValueOf(all), "", "{env.SD_X}"); len(left) > 0 {
		t.Errorf("options left unexpanded: %v", left)
	}
}

// fillStrings sets every exported string v holds (in fields, slices, maps and pointers
// to structs) to s, making one element of each slice and map.
func fillStrings(v reflect.Value, s string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Pointer:
		if v.Type().Elem().Kind() == reflect.Struct {
			v.Set(reflect.New(v.Type().Elem()))
			fillStrings(v.Elem(), s)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillStrings(v.Field(i), s)
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.Uint8 {
			v.Set(reflect.MakeSlice(v.Type(), 1, 1))
			fillStrings(v.Index(0), s)
		}
	case reflect.Map:
		if v.Type().Key().Kind() == reflect.String {
			v.Set(reflect.MakeMap(v.Type()))
			val := reflect.New(v.Type().Elem()).Elem()
			fillStrings(val, s)
			v.SetMapIndex(reflect.ValueOf("Key-"+s).Convert(v.Type().Key()), val)
		}
	}
}

// findStrings lists the paths of the strings v holds that contain s.
func findStrings(v reflect.Value, path, s string) []string {
	var out []string
	switch v.Kind() {
	case reflect.String:
		if strings.Contains(v.String(), s) {
			out = append(out, path)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			out = findStrings(v.Elem(), path, s)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				out = append(out, findStrings(v.Field(i), path+"."+v.Type().Field(i).Name, s)...)
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			out = append(out, findStrings(v.Index(i), fmt.Sprintf("%s[%d]", path, i), s)...)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			out = append(out, findStrings(k, path+" key", s)...)
			out = append(out, findStrings(v.MapIndex(k), path+"["+k.String()+"]", s)...)
		}
	}
	return out
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
		{"types", func(s *StreamDownloads) { s.Types = []string{"default", "audio", "1080p", "720p"} }, ""},
		{"types of no type", func(s *StreamDownloads) { s.Types = []string{"default", "abc"} }, `types: "abc" is not a download type`},
		{"languages", func(s *StreamDownloads) { s.Languages = []string{"en", "zh-Hant-TW"} }, ""},
		{"languages of no tag", func(s *StreamDownloads) { s.Languages = []string{"en", "1"} }, `languages: "1" is not a language tag`},
		{"types of a height with a space", func(s *StreamDownloads) { s.Types = []string{"720p 1080p"} }, `types: "720p 1080p" is not a download type`},
		{"notify", func(s *StreamDownloads) {
			s.NotifyURL, s.NotifySecret = []string{"https://a/h", "http://b:8/"}, "0123456789abcdef"
		}, ""},
		{"notify_url not a URL", func(s *StreamDownloads) {
			s.NotifyURL, s.NotifySecret = []string{"https://a/h", "/h?token=t0k3n"}, "0123456789abcdef"
		}, "notify_url: value 2 of 2 is not"},
		{"notify_url with a brace", func(s *StreamDownloads) { s.NotifyURL, s.NotifySecret = []string{"https://a/{x}"}, "0123456789abcdef" }, "notify_url: value 1 of 1"},
		{"notify_url without notify_secret", func(s *StreamDownloads) { s.NotifyURL = []string{"https://a/h"} }, "notify_url: needs notify_secret"},
		{"notify_secret without notify_url", func(s *StreamDownloads) { s.NotifySecret = "0123456789abcdef" }, "notify_secret: set without notify_url"},
		{"short notify_secret", func(s *StreamDownloads) { s.NotifyURL, s.NotifySecret = []string{"https://a/h"}, "short-s3cret" }, "notify_secret: shorter than 16"},
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

// TestAdaptStore: the store s3 block adapts to "store": {"s3": {…}} with the documented
// snake_case names, its placeholders kept as written (no secret in the JSON), and that JSON
// reads back into the same options.
func TestAdaptStore(t *testing.T) {
	const secret = "secret-of-the-environment"
	t.Setenv("SD_ADAPT_S3_SECRET", secret)
	input := ":8080 {\n" +
		"\tstream_downloads {\n" +
		"\t\torigin http://origin/{video_id}/master.m3u8\n" +
		"\t\tstore s3 {\n" +
		"\t\t\tendpoint http://127.0.0.1:9000\n" +
		"\t\t\tbucket downloads\n" +
		"\t\t\tregion us-east-1\n" +
		"\t\t\tprefix fleet\n" +
		"\t\t\taccess_key AKID\n" +
		"\t\t\tsecret_key {env.SD_ADAPT_S3_SECRET}\n" +
		"\t\t\tpath_style\n" +
		"\t\t\tlease 1m\n" +
		"\t\t\tnode edge-1\n" +
		"\t\t}\n" +
		"\t}\n" +
		"}\n"
	out, routes := adaptRoutes(t, input)
	if strings.Contains(string(out), secret) {
		t.Errorf("the adapted JSON holds the secret: %s", out)
	}
	want := map[string]any{"s3": map[string]any{"endpoint": "http://127.0.0.1:9000", "bucket": "downloads", "region": "us-east-1",
		"prefix": "fleet", "access_key": "AKID", "secret_key": "{env.SD_ADAPT_S3_SECRET}", "path_style": true,
		"lease": float64(time.Minute), "node": "edge-1"}}
	if len(routes) != 1 || !reflect.DeepEqual(routes[0].Handle[0]["store"], want) {
		t.Errorf("adapted to %s, want \"store\": %v", out, want)
	}

	// The JSON config, as written by hand (durations as strings).
	var s StreamDownloads
	in := `{"origin":"http://o/x","store":{"s3":{"endpoint":"http://127.0.0.1:9000","bucket":"downloads","region":"us-east-1",` +
		`"prefix":"fleet","access_key":"AKID","secret_key":"{env.X}","path_style":true,"lease":"30s","node":"n1"}}}`
	if err := json.Unmarshal([]byte(in), &s); err != nil {
		t.Fatal(err)
	}
	wantS := StreamDownloads{Origin: "http://o/x", Store: &Store{S3: &S3Store{Endpoint: "http://127.0.0.1:9000", Bucket: "downloads",
		Region: "us-east-1", Prefix: "fleet", AccessKey: "AKID", SecretKey: "{env.X}", PathStyle: true,
		Lease: caddy.Duration(30 * time.Second), Node: "n1"}}}
	if !reflect.DeepEqual(s, wantS) {
		t.Errorf("JSON read as %+v %+v, want %+v", s, *s.Store.S3, *wantS.Store.S3)
	}
	// Without a store, no "store" in the JSON.
	b, err := json.Marshal(StreamDownloads{Origin: "http://o/x"})
	if err != nil || strings.Contains(string(b), "store") {
		t.Errorf("JSON of a config without a store: %s %v", b, err)
	}
}

// TestValidateStore: the store's options are checked when the config loads (once expanded),
// naming the option, never echoing the secret.
func TestValidateStore(t *testing.T) {
	const secret = "secret-never-echoed"
	okStore := S3Store{Endpoint: "http://127.0.0.1:9000", Bucket: "downloads", AccessKey: "AKID", SecretKey: secret}
	cases := []struct {
		name   string
		modify func(*S3Store)
		err    string
	}{
		{"valid", func(*S3Store) {}, ""},
		{"valid with all", func(c *S3Store) {
			c.Region, c.Prefix, c.PathStyle, c.Lease, c.Node = "auto", "a/b", true, caddy.Duration(3*time.Second), "edge-1.example_2"
		}, ""},
		{"no endpoint", func(c *S3Store) { c.Endpoint = "" }, "store s3 endpoint: is required"},
		{"endpoint without scheme", func(c *S3Store) { c.Endpoint = "s3.example.com" }, "store s3 endpoint: "},
		{"endpoint ftp", func(c *S3Store) { c.Endpoint = "ftp://s3.example.com" }, "store s3 endpoint: "},
		{"endpoint with credentials", func(c *S3Store) { c.Endpoint = "http://AKID:" + secret + "@h" }, "store s3 endpoint: "},
		{"endpoint holding the secret", func(c *S3Store) { c.Endpoint = secret }, "store s3 endpoint: "},
		{"no bucket", func(c *S3Store) { c.Bucket = "" }, "store s3 bucket: is required"},
		{"bad bucket", func(c *S3Store) { c.Bucket = "-bad-" }, "store s3 bucket: "},
		{"bad prefix", func(c *S3Store) { c.Prefix = "a//b" }, "store s3 prefix: "},
		{"no access_key", func(c *S3Store) { c.AccessKey = "" }, "store s3 access_key: is required"},
		{"no secret_key", func(c *S3Store) { c.SecretKey = "" }, "store s3 secret_key: is required"},
		{"short lease", func(c *S3Store) { c.Lease = caddy.Duration(time.Second) }, "store s3 lease: 1s is below the minimum of 3s"},
		{"negative lease", func(c *S3Store) { c.Lease = caddy.Duration(-time.Second) }, "store s3 lease: "},
		{"node with a slash", func(c *S3Store) { c.Node = "a/b" }, "store s3 node: "},
		{"node with a space", func(c *S3Store) { c.Node = "a b" }, "store s3 node: "},
		{"node too long", func(c *S3Store) { c.Node = strings.Repeat("n", 129) }, "store s3 node: "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := okStore
			c.modify(&st)
			s := StreamDownloads{Origin: "http://o/{video_id}.m3u8", FetchConcurrency: 8, MaxJobs: 2, Store: &Store{S3: &st}}
			err := s.Validate()
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Errorf("error %v, want %q", err, c.err)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("the error echoes the secret: %v", err)
			}
		})
	}
	s := StreamDownloads{Origin: "http://o/{video_id}.m3u8", FetchConcurrency: 8, MaxJobs: 2, Store: &Store{}}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "store: needs an s3 block") {
		t.Errorf("a store without s3: %v", err)
	}
	if n := defaultNode(); !validNodeName(n) || n != defaultNode() || len(n) < 10 || n[len(n)-9] != '-' {
		t.Errorf("default node %q: want a valid name, <host>-<8 hex>, the same each time", n)
	}
}

// TestExpandStorePlaceholders: every string of the store s3 block takes {env.*} and
// {file.*} (the secret from the environment here); an empty one fails naming the option,
// without the secret.
func TestExpandStorePlaceholders(t *testing.T) {
	const secret = "s3-secret-from-the-environment"
	dir := t.TempDir()
	akFile := filepath.Join(dir, "ak")
	if err := os.WriteFile(akFile, []byte("AKID\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SD_S3_SECRET", secret)
	t.Setenv("SD_S3_HOST", "s3.example.com")
	t.Setenv("SD_S3_X", "x")
	s := StreamDownloads{Origin: "http://o/{video_id}", Store: &Store{S3: &S3Store{
		Endpoint: "https://{env.SD_S3_HOST}", Bucket: "b-{env.SD_S3_X}", Region: "r-{env.SD_S3_X}", Prefix: "p/{env.SD_S3_X}",
		AccessKey: "{file." + akFile + "}", SecretKey: "{env.SD_S3_SECRET}", Node: "n-{env.SD_S3_X}",
	}}}
	if err := s.expandPlaceholders(); err != nil {
		t.Fatal(err)
	}
	want := S3Store{Endpoint: "https://s3.example.com", Bucket: "b-x", Region: "r-x", Prefix: "p/x", AccessKey: "AKID", SecretKey: secret, Node: "n-x"}
	if *s.Store.S3 != want {
		t.Errorf("got %+v, want %+v", *s.Store.S3, want)
	}
	os.Unsetenv("SD_S3_SECRET")
	s.Store.S3.SecretKey = "{env.SD_S3_SECRET}"
	err := s.expandPlaceholders()
	if err == nil || !strings.Contains(err.Error(), "store s3 secret_key: evaluated placeholder {env.SD_S3_SECRET} is empty") {
		t.Errorf("an unset secret: %v", err)
	}
}

// adaptedRoute is a route of an adapted config.
type adaptedRoute struct {
	Match  []map[string]any `json:"match"`
	Handle []map[string]any `json:"handle"`
}

// adaptRoutes adapts a Caddyfile, failing the test on an error or a warning, and returns
// the JSON and the routes of its server srv0.
func adaptRoutes(t *testing.T, input string) ([]byte, []adaptedRoute) {
	t.Helper()
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
					Routes []adaptedRoute `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	return out, cfg.Apps.HTTP.Servers["srv0"].Routes
}

// TestAdaptNotify: notify_url and notify_secret adapt to the JSON options notify_url (a
// list) and notify_secret, the secret's placeholder kept, not its value.
func TestAdaptNotify(t *testing.T) {
	t.Setenv("SD_ADAPT_HOOK_SECRET", "value-of-the-environment")
	_, routes := adaptRoutes(t, ":8080 {\n\tstream_downloads {\n\t\torigin http://o/{video_id}.m3u8\n"+
		"\t\tnotify_url https://app.example/a\n\t\tnotify_url https://app.example/b\n\t\tnotify_secret {env.SD_ADAPT_HOOK_SECRET}\n\t}\n}\n")
	h := routes[0].Handle[0]
	if !reflect.DeepEqual(h["notify_url"], []any{"https://app.example/a", "https://app.example/b"}) || h["notify_secret"] != "{env.SD_ADAPT_HOOK_SECRET}" {
		t.Errorf("handler JSON %v", h)
	}
	var s StreamDownloads
	b, _ := json.Marshal(h)
	if err := json.Unmarshal(b, &s); err != nil || len(s.NotifyURL) != 2 || s.NotifySecret != "{env.SD_ADAPT_HOOK_SECRET}" {
		t.Errorf("JSON back: %+v %v", s, err)
	}
	if err := s.expandPlaceholders(); err != nil || s.NotifySecret != "value-of-the-environment" {
		t.Errorf("expanded: %q %v", s.NotifySecret, err)
	}
}
