package streamdownloads

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/stream-downloads/caddy-stream-downloads/observe"
	"github.com/stream-downloads/caddy-stream-downloads/packager"
)

func init() {
	caddy.RegisterModule(AdminView{})
}

// managed is a packaging manager as the usage pool (managers) keeps it, with what lives
// as long as it does: its metrics, and the name the metrics and the admin view give it.
type managed struct {
	*packager.Manager // its Destruct is the pool's
	store             string
	metrics           *observe.Metrics
}

// newManaged makes m's entry of the pool; store names it (its storage_dir, or its
// bucket and cache).
func newManaged(m *packager.Manager, store string) *managed {
	mgd := &managed{Manager: m, store: store, metrics: observe.NewMetrics(store, m)}
	m.Instrument(mgd.metrics)
	return mgd
}

// AdminView is the admin API module admin.api.stream_downloads: GET /stream_downloads/
// on Caddy's admin endpoint answers, as JSON, what every packaging manager of the
// process is doing (docs/operations.md): its jobs in progress, its queue, its storage
// use and its last failures; in a fleet, this node's jobs and name.
type AdminView struct{}

// CaddyModule returns the Caddy module information.
func (AdminView) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.stream_downloads",
		New: func() caddy.Module { return new(AdminView) },
	}
}

// Routes implements caddy.AdminRouter.
func (a *AdminView) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/stream_downloads/", Handler: caddy.AdminHandlerFunc(a.serve)}}
}

// adminAnswer is the admin view's JSON.
type adminAnswer struct {
	Managers []adminManager `json:"managers"`
}

type adminManager struct {
	// Store is the manager's storage_dir, or its bucket (s3://endpoint/bucket/prefix)
	// and local cache.
	Store string `json:"store"`
	packager.Snapshot
	// Fleet is what the whole fleet is doing, in a fleet.
	Fleet *packager.FleetCounts `json:"fleet,omitempty"`
}

func (a *AdminView) serve(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errMethod}
	}
	ans := adminAnswer{Managers: []adminManager{}}
	managers.Range(func(_, v any) bool {
		if m, ok := v.(*managed); ok {
			ans.Managers = append(ans.Managers, adminManager{Store: m.store, Snapshot: m.Snapshot(), Fleet: m.FleetCounts(r.Context())})
		}
		return true
	})
	slices.SortFunc(ans.Managers, func(a, b adminManager) int { return strings.Compare(a.Store, b.Store) })
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(ans)
}

var errMethod = methodError("method not allowed: use GET")

type methodError string

func (e methodError) Error() string { return string(e) }

// Interface guards
var _ caddy.AdminRouter = (*AdminView)(nil)

// label names the manager of s, whose local cache is cacheDir, in the metrics and the
// admin view: no credentials.
func (s *S3Store) label(cacheDir string) string {
	return "s3://" + strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(s.Endpoint, "https://"), "http://"), "/") +
		"/" + s.Bucket + "/" + s.Prefix + " (cache " + cacheDir + ")"
}
