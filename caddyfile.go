package streamdownloads

import (
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("stream_downloads", parseCaddyfile)
	// Ordered with the handlers that answer requests, so no `order` line is needed; it
	// passes every request it does not own to the next handler.
	httpcaddyfile.RegisterDirectiveOrder("stream_downloads", httpcaddyfile.Before, "respond")
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Every string option
// takes the placeholders {env.*}, {file.*} and {system.*}, expanded when the config
// loads (so secrets stay out of the adapted JSON); origin also takes per-request ones.
// Syntax:
//
//	stream_downloads [<matcher>] {
//	    origin            <url-template>   # required; {video_id} is the video id
//	    origin_header     <name> <value>   # repeatable
//	    storage_dir       <path>
//	    api_token         <token>          # repeatable
//	    public_url        <base-url>
//	    max_height        <pixels>         # caps the rendition of "default"
//	    types             <type>...        # what may be created: default audio 1080p 720p …;
//	                                       # default: all, any height
//	    languages         <tag>...         # alternative audio and subtitle languages kept:
//	                                       # en fr pt-BR …; default: all
//	    fetch_concurrency <n>
//	    max_jobs          <n>
//	    max_queue         <n>              # default 1000; beyond, creating answers 503
//	    create_wait       <duration>       # default 10s: how long a POST waits for the origin
//	    require_signed_urls
//	    signing_key       <kid> <file>     # repeatable
//	    geoip_db          <path>
//	    country_header    <name>
//	    max_storage       <size>           # e.g. 50GiB
//	    on_demand         [<max_wait>]     # default 30s
//	    on_demand_client_rate <n>          # on-demand creations a minute per client; default 10
//	    on_demand_rate    <n>              # on-demand creations a minute in all; default 120
//	    allowed_hosts     <host>...        # besides the origin's
//	    notify_url        <url>            # repeatable: webhooks on ready/error/deleted (docs/webhooks.md)
//	    notify_secret     <secret>         # required with notify_url: the HMAC key, 16+ characters
//	    limits {
//	        playlist_size <size>           # default 16MiB
//	        segments      <n>              # default 100000
//	        segment_size  <size>           # default 1GiB
//	        output_size   <size>           # default 100GiB
//	        duration      <duration>       # default 24h
//	    }
//	    store s3 {                         # a fleet's shared bucket (docs/spec.md §6); storage_dir
//	                                       # becomes this instance's local cache
//	        endpoint   <url>               # required: https://s3.example.com, http://127.0.0.1:9000
//	        bucket     <name>              # required; must exist
//	        region     <region>            # default: asked of the server
//	        prefix     <prefix>            # keys under <prefix>/; default: none
//	        access_key <key>               # required
//	        secret_key <secret>            # required; e.g. {env.S3_SECRET_KEY}, never logged
//	        path_style                     # path-style requests (most self-hosted servers)
//	        lease      <duration>          # default 30s, at least 3s: a holder silent this
//	                                       # long is taken over (renewed every third of it)
//	        node       <name>              # this instance in leases; unique in the fleet.
//	                                       # Default: host name-<8 random hex> per process
//	    }
//	}
//
// With store s3 the bucket must honour conditional writes (If-None-Match: * and If-Match on
// PutObject): that is checked with the key probes/<node> when the config loads, which fails
// if the bucket does not or refuses the check (access denied, no such bucket); a bucket
// that cannot be reached then is not fatal (a warning, and the instance starts degraded).
func (s *StreamDownloads) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		switch opt {
		case "origin":
			if err := oneArg(d, &s.Origin); err != nil {
				return err
			}
			if err := checkURLArg(s.Origin); err != nil {
				return d.Errf("origin: %v", err)
			}
		case "origin_header":
			var name, value string
			if !d.Args(&name, &value) || d.NextArg() {
				return d.Errf("origin_header: want <name> <value>")
			}
			if s.OriginHeader == nil {
				s.OriginHeader = http.Header{}
			}
			s.OriginHeader.Add(name, value)
		case "storage_dir":
			if err := oneArg(d, &s.StorageDir); err != nil {
				return err
			}
		case "api_token":
			var t string
			if err := oneArg(d, &t); err != nil {
				return err
			}
			s.APIToken = append(s.APIToken, t)
		case "public_url":
			if err := oneArg(d, &s.PublicURL); err != nil {
				return err
			}
			if err := checkURLArg(s.PublicURL); err != nil {
				return d.Errf("public_url: %v", err)
			}
		case "max_height":
			if err := positiveInt(d, &s.MaxHeight); err != nil {
				return err
			}
		case "fetch_concurrency":
			if err := positiveInt(d, &s.FetchConcurrency); err != nil {
				return err
			}
		case "max_jobs":
			if err := positiveInt(d, &s.MaxJobs); err != nil {
				return err
			}
		case "max_queue":
			if err := positiveInt(d, &s.MaxQueue); err != nil {
				return err
			}
			if s.MaxQueue > 1_000_000 {
				return d.Errf("max_queue: %d is more than 1000000", s.MaxQueue)
			}
		case "create_wait":
			var v string
			if err := oneArg(d, &v); err != nil {
				return err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return d.Errf("create_wait: %q is not a positive duration", v)
			}
			s.CreateWait = caddy.Duration(dur)
		case "require_signed_urls":
			if d.NextArg() {
				return d.Errf("require_signed_urls: takes no value")
			}
			s.RequireSignedURLs = true
		case "signing_key":
			var k SigningKey
			if !d.Args(&k.KID, &k.File) || d.NextArg() {
				return d.Errf("signing_key: want <kid> <file>")
			}
			s.SigningKey = append(s.SigningKey, k)
		case "geoip_db":
			if err := oneArg(d, &s.GeoIPDB); err != nil {
				return err
			}
		case "country_header":
			if err := oneArg(d, &s.CountryHeader); err != nil {
				return err
			}
		case "max_storage":
			if err := sizeArg(d, &s.MaxStorage); err != nil {
				return err
			}
		case "on_demand":
			s.OnDemand = caddy.Duration(defaultOnDemandWait)
			if d.NextArg() {
				dur, err := caddy.ParseDuration(d.Val())
				if err != nil || dur <= 0 {
					return d.Errf("on_demand: %q is not a positive duration", d.Val())
				}
				s.OnDemand = caddy.Duration(dur)
			}
			if d.NextArg() {
				return d.Errf("on_demand: takes at most one value")
			}
		case "on_demand_client_rate":
			if err := positiveInt(d, &s.OnDemandClientRate); err != nil {
				return err
			}
		case "on_demand_rate":
			if err := positiveInt(d, &s.OnDemandRate); err != nil {
				return err
			}
		case "types":
			types, err := listArgs(d, "types: missing download types (default, audio, 720p …)", checkType)
			if err != nil {
				return err
			}
			s.Types = append(s.Types, types...)
		case "languages":
			langs, err := listArgs(d, "languages: missing language tags (en, fr, pt-BR …)", checkLanguage)
			if err != nil {
				return err
			}
			s.Languages = append(s.Languages, langs...)
		case "allowed_hosts":
			hosts := d.RemainingArgs()
			if len(hosts) == 0 {
				return d.Errf("allowed_hosts: missing host names")
			}
			s.AllowedHosts = append(s.AllowedHosts, hosts...)
		case "notify_url":
			var u string
			if err := oneArg(d, &u); err != nil {
				return err
			}
			if err := checkURLArg(u); err != nil {
				return d.Errf("notify_url: %v", err)
			}
			s.NotifyURL = append(s.NotifyURL, u)
		case "notify_secret":
			if s.NotifySecret != "" {
				return d.Err("notify_secret: given twice")
			}
			if err := oneArg(d, &s.NotifySecret); err != nil {
				return err
			}
		case "limits":
			if err := s.unmarshalLimits(d); err != nil {
				return err
			}
		case "store":
			if err := s.unmarshalStore(d); err != nil {
				return err
			}
		default:
			return d.Errf("unknown option %q in stream_downloads", opt)
		}
	}
	if s.Origin == "" {
		return d.Err("origin: required (the HLS playlist URL of a video, with {video_id})")
	}
	if len(s.NotifyURL) > 0 && s.NotifySecret == "" {
		return d.Err("notify_url: needs notify_secret, the key receivers verify the Webhook-Signature with (unsigned webhooks are refused)")
	}
	if len(s.NotifyURL) == 0 && s.NotifySecret != "" {
		return d.Err("notify_secret: set without notify_url")
	}
	return nil
}

// checkURLArg checks a URL option as it is written; one with an {env.*}, {file.*} or
// {system.*} placeholder is checked once expanded, when the config loads, since it may
// be adapted where those have other values (or none).
func checkURLArg(s string) error {
	if hasLoadPlaceholder(s) {
		return nil
	}
	return checkHTTPURL(s)
}

// oneArg reads the single argument of the current option into dst.
func oneArg(d *caddyfile.Dispenser, dst *string) error {
	opt := d.Val()
	if !d.NextArg() {
		return d.Errf("%s: missing value", opt)
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.Errf("%s: takes one value", opt)
	}
	return nil
}

// positiveInt reads the single argument of the current option as an integer above zero.
func positiveInt(d *caddyfile.Dispenser, dst *int) error {
	opt := d.Val()
	var v string
	if err := oneArg(d, &v); err != nil {
		return err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return d.Errf("%s: %q is not a whole number above 0", opt, v)
	}
	*dst = n
	return nil
}

// unmarshalLimits reads the limits { … } block.
func (s *StreamDownloads) unmarshalLimits(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.Errf("limits: takes a block, not values")
	}
	if s.Limits == nil {
		s.Limits = new(Limits)
	}
	l := s.Limits
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch opt := d.Val(); opt {
		case "playlist_size":
			err = sizeArg(d, &l.PlaylistSize)
		case "segment_size":
			err = sizeArg(d, &l.SegmentSize)
		case "output_size":
			err = sizeArg(d, &l.OutputSize)
		case "segments":
			err = positiveInt(d, &l.Segments)
		case "duration":
			var v string
			if err = oneArg(d, &v); err == nil {
				dur, perr := caddy.ParseDuration(v)
				if perr != nil || dur <= 0 {
					return d.Errf("duration: %q is not a positive duration", v)
				}
				l.Duration = caddy.Duration(dur)
			}
		default:
			return d.Errf("unknown option %q in limits", opt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// unmarshalStore reads the store s3 { … } block.
func (s *StreamDownloads) unmarshalStore(d *caddyfile.Dispenser) error {
	if s.Store != nil {
		return d.Err("store: given twice (one store per handler)")
	}
	if !d.NextArg() {
		return d.Err("store: missing the kind of store (store s3 { … })")
	}
	if kind := d.Val(); kind != "s3" {
		return d.Errf("store: unknown kind %q (the only kind is s3: store s3 { … })", kind)
	}
	if d.NextArg() {
		return d.Err("store s3: takes a block, not values")
	}
	c := new(S3Store)
	n := 0
	for nesting := d.Nesting(); d.NextBlock(nesting); n++ {
		opt := d.Val()
		var dst *string
		switch opt {
		case "endpoint":
			dst = &c.Endpoint
		case "bucket":
			dst = &c.Bucket
		case "region":
			dst = &c.Region
		case "prefix":
			dst = &c.Prefix
		case "access_key":
			dst = &c.AccessKey
		case "secret_key":
			dst = &c.SecretKey
		case "node":
			dst = &c.Node
		case "path_style":
			if d.NextArg() {
				return d.Err("store s3 path_style: takes no value")
			}
			c.PathStyle = true
			continue
		case "lease":
			var v string
			if err := storeArg(d, &v); err != nil {
				return err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur < minLease {
				return d.Errf("store s3 lease: %q is not a duration of at least %s", v, minLease)
			}
			c.Lease = caddy.Duration(dur)
			continue
		default:
			return d.Errf("unknown option %q in store s3 (endpoint, bucket, region, prefix, access_key, secret_key, path_style, lease, node)", opt)
		}
		if err := storeArg(d, dst); err != nil {
			return err
		}
	}
	if n == 0 {
		return d.Err("store s3: missing its block { endpoint … bucket … access_key … secret_key … }")
	}
	for _, req := range []struct{ opt, v string }{{"endpoint", c.Endpoint}, {"bucket", c.Bucket}, {"access_key", c.AccessKey}, {"secret_key", c.SecretKey}} {
		if req.v == "" {
			return d.Errf("store s3 %s: required", req.opt)
		}
	}
	// The values without placeholders are checked now; the others once expanded, when the
	// config loads (a valid stand-in takes their place here).
	check := *c
	for _, f := range []struct {
		v     *string
		stand string
	}{{&check.Endpoint, "http://127.0.0.1:9000"}, {&check.Bucket, "bucket"}, {&check.Region, "region"}, {&check.Prefix, "prefix"},
		{&check.AccessKey, "key"}, {&check.SecretKey, "secret"}, {&check.Node, "node"}} {
		if hasLoadPlaceholder(*f.v) {
			*f.v = f.stand
		}
	}
	if err := check.validate(); err != nil {
		return d.Err(err.Error())
	}
	s.Store = &Store{S3: c}
	return nil
}

// storeArg reads the single argument of the current option of store s3 into dst.
func storeArg(d *caddyfile.Dispenser, dst *string) error {
	opt := d.Val()
	if !d.NextArg() {
		return d.Errf("store s3 %s: missing value", opt)
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.Errf("store s3 %s: takes one value", opt)
	}
	return nil
}

// sizeArg reads the single argument of the current option as a size (500MB, 50GiB).
func sizeArg(d *caddyfile.Dispenser, dst *Size) error {
	opt := d.Val()
	var v string
	if err := oneArg(d, &v); err != nil {
		return err
	}
	z, err := ParseSize(v)
	if err != nil || z == 0 {
		return d.Errf("%s: %q is not a size above zero (e.g. 500MB, 50GiB)", opt, v)
	}
	*dst = z
	return nil
}

// parseCaddyfile builds the handler from its Caddyfile directive.
func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	s := new(StreamDownloads)
	err := s.UnmarshalCaddyfile(h.Dispenser)
	return s, err
}

// Interface guard
var _ caddyfile.Unmarshaler = (*StreamDownloads)(nil)

// listArgs reads the values of a list option (types, languages): at least one, each
// checked by check unless it holds a placeholder (checked once expanded, at Validate).
func listArgs(d *caddyfile.Dispenser, missing string, check func(string) error) ([]string, error) {
	vals := d.RemainingArgs()
	if len(vals) == 0 {
		return nil, d.Err(missing)
	}
	for _, v := range vals {
		if hasLoadPlaceholder(v) {
			continue
		}
		if err := check(v); err != nil {
			return nil, d.Err(err.Error())
		}
	}
	return vals, nil
}
