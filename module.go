// Package streamdownloads is the Caddy module http.handlers.stream_downloads: it gives
// every video behind an HLS origin a downloadable, faststart MP4 (see docs/spec.md).
package streamdownloads

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/handler"
	"github.com/stream-downloads/caddy-stream-downloads/packager"
	"github.com/stream-downloads/caddy-stream-downloads/packager/hls"
	"github.com/stream-downloads/caddy-stream-downloads/tokens"
)

func init() {
	caddy.RegisterModule(StreamDownloads{})
}

// managers keeps one packaging manager per storage directory across config reloads,
// so jobs go on and nothing runs twice when the config changes.
var managers = caddy.NewUsagePool()

// Defaults of the options.
const (
	defaultMaxJobs      = 2
	defaultOnDemandWait = 30 * time.Second
)

// StreamDownloads makes MP4 downloads of the videos behind an HLS origin, with a
// management API (…/stream/{video}/downloads) and delivery (…/{video}/downloads/default.mp4).
// Requests of any other shape go to the next handler.
//
// Every string option takes the placeholders {env.*}, {file.*} and {system.*}, expanded
// when the config loads: a secret can stay out of the config (api_token
// {env.DOWNLOADS_API_TOKEN}), and one that comes out empty fails the load. Handlers of one
// config that share a storage_dir must agree on its packaging settings.
type StreamDownloads struct {
	// Origin is the HLS playlist URL (master or media) of a video: {video_id} is
	// replaced by the id; other Caddy placeholders work too. Required.
	Origin string `json:"origin,omitempty"`

	// OriginHeader adds headers to every origin request (authorization, Host).
	OriginHeader http.Header `json:"origin_header,omitempty"`

	// StorageDir keeps packaged files and download records.
	// Default: <caddy data dir>/stream_downloads.
	StorageDir string `json:"storage_dir,omitempty"`

	// APIToken lists the bearer tokens the management API accepts. With none, the API
	// answers 401 to everyone.
	APIToken []string `json:"api_token,omitempty"`

	// PublicURL is the base of the "url" fields in API answers (scheme, host and an
	// optional path). Default: the request's scheme and host.
	PublicURL string `json:"public_url,omitempty"`

	// MaxHeight caps the height of the rendition chosen for "default"; 0: no cap.
	MaxHeight int `json:"max_height,omitempty"`

	// Types names the download types that may be created (POST, on_demand) and
	// delivered: "default", "audio", heights such as "1080p" (the rendition of that
	// height, or the nearest below). Another type's POST answers 400, its file 404.
	// Default: all, any height.
	Types []string `json:"types,omitempty"`

	// Languages keeps, of the alternative audio renditions and the subtitle
	// renditions, those of these languages (BCP 47 tags as playlists write them; "en"
	// keeps "en-GB" too). The audio the variant plays by default is always kept.
	// Default: all.
	Languages []string `json:"languages,omitempty"`

	// FetchConcurrency is the number of parallel origin requests of one packaging
	// job. Default: 12 (what keeps a distant origin's connections busy; the bytes
	// fetched ahead stay within 8 MiB per job whatever the number).
	FetchConcurrency int `json:"fetch_concurrency,omitempty"`

	// MaxJobs is the number of packaging jobs that run at once; more wait in a queue.
	// Default: 2.
	MaxJobs int `json:"max_jobs,omitempty"`

	// MaxQueue bounds the downloads waiting for a packaging job (queued, or created and
	// waiting for the origin's playlists): beyond it, creating one (POST, or a GET with
	// on_demand) answers 503 with Retry-After. A queued download holds its key only; its
	// playlists are read when its job starts. Default: 1000.
	MaxQueue int `json:"max_queue,omitempty"`

	// CreateWait is how long a POST waits for the origin's playlists: within it, a video
	// the origin does not have answers 404 and a live one 409; past it, the POST answers
	// inprogress and such a download ends in error (errorReasonCode not_found, live).
	// Default: 10s.
	CreateWait caddy.Duration `json:"create_wait,omitempty"`

	// RequireSignedURLs makes every video private: its files are delivered only to a
	// URL whose video element is a signed token allowing downloads.
	RequireSignedURLs bool `json:"require_signed_urls,omitempty"`

	// SigningKey lists the keys that verify tokens (by kid); a private one also signs
	// the tokens of POST …/stream/{video}/token. Files hold PEM, a JWK (JSON or base64
	// of it) or a JWK set.
	SigningKey []SigningKey `json:"signing_key,omitempty"`

	// GeoIPDB is a MaxMind country database (.mmdb) for ip.geoip.country rules.
	GeoIPDB string `json:"geoip_db,omitempty"`

	// CountryHeader names a request header, set by a trusted proxy in front, that holds
	// the client's country; it is used instead of the GeoIP database when present.
	CountryHeader string `json:"country_header,omitempty"`

	// MaxStorage bounds the bytes of packaged files kept: beyond it, the least recently
	// used are evicted (never one being served or written). 0: no limit.
	MaxStorage Size `json:"max_storage,omitempty"`

	// OnDemand, when set, makes a GET of a file that is not packaged (not created, or
	// evicted) start packaging it and wait up to this long before answering 503.
	OnDemand caddy.Duration `json:"on_demand,omitempty"`

	// OnDemandClientRate bounds the downloads that on-demand GETs from one client
	// address (an IPv6 /64) create, per minute; beyond, such a GET answers 429 with
	// Retry-After. A GET of a file that exists or is being packaged never counts.
	// Default: 10.
	OnDemandClientRate int `json:"on_demand_client_rate,omitempty"`

	// OnDemandRate bounds the downloads that on-demand GETs create in all, per minute.
	// Default: 120.
	OnDemandRate int `json:"on_demand_rate,omitempty"`

	// Limits bound what one video may make the module fetch and write.
	Limits *Limits `json:"limits,omitempty"`

	// AllowedHosts lists the hosts besides the origin's that playlists may point
	// segments, keys and renditions at ("*.cdn.example" matches its subdomains).
	AllowedHosts []string `json:"allowed_hosts,omitempty"`

	// Store, when set, keeps the download records and packaged files in a store shared
	// by a fleet of instances (docs/spec.md §6) instead of storage_dir alone: storage_dir then
	// becomes this instance's local read-through cache of files, bounded by max_storage
	// (in a sub-folder of its own per bucket and prefix). Without it, nothing is shared.
	Store *Store `json:"store,omitempty"`

	// NotifyURL lists the URLs that get a webhook, a signed JSON POST, when a download
	// becomes ready, fails or is deleted (docs/webhooks.md): retried for an hour, queued
	// in storage_dir/.webhooks. Needs notify_secret.
	NotifyURL []string `json:"notify_url,omitempty"`

	// NotifySecret is the HMAC-SHA256 key of the webhooks' Webhook-Signature header, at
	// least 16 characters (e.g. {env.DOWNLOADS_WEBHOOK_SECRET}); never logged.
	NotifySecret string `json:"notify_secret,omitempty"`

	handler    *handler.Handler
	release    func() // gives the manager back the settings of the config before
	geoip      *tokens.GeoIP
	managerKey string
	logger     *zap.Logger

	releaseClaim func() // ends this handler's use of its storage_dir in its config

	releaseNotify func() // ends this handler's use of its storage_dir's webhook sender
}

// Limits bound one video's packaging; zero fields take the defaults.
type Limits struct {
	// PlaylistSize bounds one playlist's bytes. Default: 16MiB.
	PlaylistSize Size `json:"playlist_size,omitempty"`
	// Segments bounds the segments of one rendition. Default: 100000.
	Segments int `json:"segments,omitempty"`
	// SegmentSize bounds one segment's bytes. Default: 1GiB.
	SegmentSize Size `json:"segment_size,omitempty"`
	// OutputSize bounds one packaged file's bytes. Default: 100GiB.
	OutputSize Size `json:"output_size,omitempty"`
	// Duration bounds a video's length. Default: 24h.
	Duration caddy.Duration `json:"duration,omitempty"`
}

// defaultMaxOutput is Limits.OutputSize's default.
const defaultMaxOutput = 100 << 30

// SigningKey is one configured key file.
type SigningKey struct {
	// KID is the key id tokens name; a JWK's own kid takes precedence.
	KID string `json:"kid"`
	// File holds the key. A value given through a placeholder may be the key itself
	// (PEM, a JWK or its base64): {env.KEY}, {file./run/secrets/k1.pem}.
	File string `json:"file"`
}

// verificationCache is how many verified tokens are kept, so the range requests of one
// download pay the signature check once (at most 16 KiB of claims each).
const verificationCache = 4096

// CaddyModule returns the Caddy module information.
func (StreamDownloads) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.stream_downloads",
		New: func() caddy.Module { return new(StreamDownloads) },
	}
}

// Provision sets the defaults and opens the store and its packaging manager.
func (s *StreamDownloads) Provision(ctx caddy.Context) error {
	s.logger = ctx.Logger()
	// Before anything reads an option: {env.*} and {file.*} hold secrets and paths.
	rawKeys := append([]SigningKey(nil), s.SigningKey...)
	if err := s.expandPlaceholders(); err != nil {
		return err
	}
	// A placeholder may hold several hosts.
	var hosts []string
	for _, h := range s.AllowedHosts {
		if f := strings.FieldsFunc(h, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }); len(f) > 0 {
			hosts = append(hosts, f...)
		} else {
			hosts = append(hosts, h) // refused by Validate
		}
	}
	s.AllowedHosts = hosts
	if s.FetchConcurrency == 0 {
		s.FetchConcurrency = hls.DefaultConcurrency
	}
	if s.MaxJobs == 0 {
		s.MaxJobs = defaultMaxJobs
	}
	if s.StorageDir == "" {
		s.StorageDir = filepath.Join(caddy.AppDataDir(), "stream_downloads")
	}
	dir, err := filepath.Abs(s.StorageDir)
	if err != nil {
		return fmt.Errorf("storage_dir: %w", err)
	}

	header := make(http.Header, len(s.OriginHeader))
	for name, values := range s.OriginHeader {
		for _, v := range values {
			header.Add(name, v)
		}
	}
	if s.Limits == nil {
		s.Limits = new(Limits)
	}
	if s.Limits.OutputSize == 0 {
		s.Limits.OutputSize = defaultMaxOutput
	}
	settings := packager.Settings{
		Header:      header,
		Concurrency: s.FetchConcurrency,
		MaxHeight:   s.MaxHeight,
		Languages:   s.Languages,
		MaxJobs:     s.MaxJobs,
		MaxStorage:  int64(s.MaxStorage),
		MaxQueue:    s.MaxQueue,
		CreateWait:  time.Duration(s.CreateWait),
		Limits: hls.Limits{
			PlaylistSize: int64(s.Limits.PlaylistSize),
			Segments:     s.Limits.Segments,
			SegmentSize:  int64(s.Limits.SegmentSize),
			Duration:     time.Duration(s.Limits.Duration),
		},
		MaxOutput:    int64(s.Limits.OutputSize),
		AllowedHosts: s.AllowedHosts,
	}
	s.handler = &handler.Handler{
		APITokens:     s.APIToken,
		PublicURL:     s.PublicURL,
		Types:         s.Types,
		Origin:        s.originURL,
		Logger:        s.logger,
		RequireSigned: s.RequireSignedURLs,
		OnDemand:      time.Duration(s.OnDemand),
		CountryHeader: s.CountryHeader,

		OnDemandClientRate: s.OnDemandClientRate,
		OnDemandRate:       s.OnDemandRate,
	}
	// Keys and databases first: a config that fails on them never touches the
	// packaging manager that the running config shares.
	if err := s.provisionTokens(rawKeys); err != nil {
		return err
	}
	if s3 := s.s3(); s3 != nil {
		if s3.Lease == 0 {
			s3.Lease = caddy.Duration(packager.DefaultLease)
		}
		if s3.Node == "" {
			s3.Node = defaultNode()
		}
	}
	if err := s.Validate(); err != nil {
		return err
	}
	// Handlers of this config that share the directory must agree on its settings; a
	// reload (another config) may change them.
	if ctx.Context != nil {
		use := storageUse{origin: s.Origin, settings: settings, notify: s.notifyUse()}
		if s3 := s.s3(); s3 != nil {
			use.store = s3.claimed()
		}
		release, err := claimStorage(dir, ctx.Done(), use)
		if err != nil {
			return err
		}
		s.releaseClaim = release
	}

	return s.provisionManager(ctx, dir, settings)
}

// provisionTokens loads the signing keys and the GeoIP database. raw are the signing
// keys as configured, before their placeholders were expanded.
func (s *StreamDownloads) provisionTokens(raw []SigningKey) error {
	var keys []*tokens.Key
	for i, sk := range s.SigningKey {
		ks, err := loadSigningKey(sk, raw[i])
		if err != nil {
			return err
		}
		keys = append(keys, ks...)
	}
	if len(keys) > 0 {
		v, err := tokens.NewVerifier(keys, verificationCache)
		if err != nil {
			return fmt.Errorf("signing_key: %w", err)
		}
		s.handler.Verifier = v
		for _, k := range keys {
			if k.Private != nil {
				s.handler.Signer = k
				break
			}
		}
	}
	if s.GeoIPDB != "" {
		g, err := tokens.OpenGeoIP(s.GeoIPDB)
		if err != nil {
			return fmt.Errorf("geoip_db: %w", err)
		}
		s.geoip = g
		s.handler.GeoIP = g
	}
	return nil
}

// Validate checks the configuration.
func (s *StreamDownloads) Validate() error {
	if s.Origin == "" {
		return fmt.Errorf("origin: required (the HLS playlist URL of a video, with {video_id})")
	}
	if err := checkHTTPURL(s.Origin); err != nil {
		return fmt.Errorf("origin: %w", err)
	}
	if s.PublicURL != "" {
		if err := checkHTTPURL(s.PublicURL); err != nil {
			return fmt.Errorf("public_url: %w", err)
		}
	}
	if s.FetchConcurrency < 1 || s.FetchConcurrency > 256 {
		return fmt.Errorf("fetch_concurrency: %d is not between 1 and 256", s.FetchConcurrency)
	}
	if s.MaxJobs < 1 || s.MaxJobs > 1024 {
		return fmt.Errorf("max_jobs: %d is not between 1 and 1024", s.MaxJobs)
	}
	if s.MaxStorage < 0 {
		return fmt.Errorf("max_storage: %d is negative", s.MaxStorage)
	}
	if s.MaxQueue < 0 || s.MaxQueue > 1_000_000 { // 0: the default
		return fmt.Errorf("max_queue: %d is not between 1 and 1000000", s.MaxQueue)
	}
	if s.CreateWait < 0 {
		return fmt.Errorf("create_wait: %s is negative", time.Duration(s.CreateWait))
	}
	if s.OnDemand < 0 {
		return fmt.Errorf("on_demand: %s is negative", time.Duration(s.OnDemand))
	}
	if s.OnDemandClientRate < 0 || s.OnDemandRate < 0 { // 0: the defaults
		return fmt.Errorf("on_demand_client_rate, on_demand_rate: must not be negative")
	}
	if l := s.Limits; l != nil && (l.PlaylistSize < 0 || l.Segments < 0 || l.SegmentSize < 0 || l.OutputSize < 0 || l.Duration < 0) {
		return fmt.Errorf("limits: values must not be negative")
	}
	for _, h := range s.AllowedHosts {
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		if h == "" || strings.ContainsAny(h, "/@ ") {
			return fmt.Errorf("allowed_hosts: %q is not a host name (host, *.domain or host:port)", h)
		}
	}
	if s.MaxHeight < 0 {
		return fmt.Errorf("max_height: %d is negative", s.MaxHeight)
	}
	for _, t := range s.Types {
		if err := checkType(t); err != nil {
			return err
		}
	}
	for _, l := range s.Languages {
		if err := checkLanguage(l); err != nil {
			return err
		}
	}
	if s.RequireSignedURLs && len(s.SigningKey) == 0 {
		return fmt.Errorf("require_signed_urls: needs at least one signing_key to verify tokens with")
	}
	for _, sk := range s.SigningKey {
		if sk.KID == "" || sk.File == "" {
			return fmt.Errorf("signing_key: needs a key id and a file")
		}
	}
	for _, t := range s.APIToken {
		if t == "" || strings.ContainsAny(t, " \t\r\n") {
			return fmt.Errorf("api_token: a token must be non-empty and without spaces")
		}
	}
	if err := s.validateNotify(); err != nil {
		return err
	}
	if s.Store != nil {
		if s.Store.S3 == nil {
			return fmt.Errorf("store: needs an s3 block (store s3 { endpoint … bucket … access_key … secret_key … }), the only kind of store")
		}
		if err := s.Store.S3.validate(); err != nil {
			return err
		}
	}
	return nil
}

// languageTag is what the languages option takes: a BCP 47 language tag (its form).
var languageTag = regexp.MustCompile(`^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$`)

// checkLanguage refuses a value of the languages option that is no language tag.
func checkLanguage(l string) error {
	if !languageTag.MatchString(l) {
		return fmt.Errorf("languages: %q is not a language tag (such as en, fr, pt-BR)", l)
	}
	return nil
}

// checkType refuses a value of the types option that names no download type.
func checkType(t string) error {
	if _, ok := packager.ParseType(t); !ok {
		return fmt.Errorf("types: %q is not a download type (%s, at most %dp)", t, packager.TypeNames(), packager.MaxHeight)
	}
	return nil
}

// s3 is the store s3 block, or nil.
func (s *StreamDownloads) s3() *S3Store {
	if s.Store == nil {
		return nil
	}
	return s.Store.S3
}

// Cleanup closes the GeoIP database and releases the manager; the last config using a
// storage directory stops its jobs.
func (s *StreamDownloads) Cleanup() error {
	var err error
	if s.geoip != nil {
		err = s.geoip.Close()
	}
	if s.release != nil {
		s.release()
	}
	if s.releaseClaim != nil {
		s.releaseClaim()
	}
	if s.releaseNotify != nil {
		s.releaseNotify()
	}
	if s.managerKey != "" {
		if _, derr := managers.Delete(s.managerKey); err == nil {
			err = derr
		}
	}
	return err
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (s *StreamDownloads) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return s.handler.ServeHTTP(w, r, next)
}

// originURL fills the origin template for video; the id is validated before.
func (s *StreamDownloads) originURL(r *http.Request, video string) string {
	u := strings.ReplaceAll(s.Origin, "{video_id}", video)
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		u = repl.ReplaceKnown(u, "")
	}
	return u
}

// checkHTTPURL accepts absolute http(s) URLs; placeholders may stand anywhere after the
// scheme (the host included: {http.request.host}).
func checkHTTPURL(s string) error {
	u, err := url.Parse(placeholderRE.ReplaceAllString(s, "x"))
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http:// or https:// URL", s)
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*StreamDownloads)(nil)
	_ caddy.Validator             = (*StreamDownloads)(nil)
	_ caddy.CleanerUpper          = (*StreamDownloads)(nil)
	_ caddyhttp.MiddlewareHandler = (*StreamDownloads)(nil)
)
