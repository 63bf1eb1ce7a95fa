package streamdownloads

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode"

	"github.com/stream-downloads/caddy-stream-downloads/packager"
)

// storageUse is what a handler makes of its storage_dir: handlers of one config that
// share a directory share its packaging manager, so they must agree on it.
type storageUse struct {
	origin   string
	settings packager.Settings
	// store is the handler's store s3 block without its credentials (S3Store.claimed),
	// or nil: the store and how the manager uses it (lease, node) must agree too.
	store *S3Store
	// notify is the handler's webhooks: one sender and one Listener per directory.
	notify notifyUse
}

// notifyUse is what handlers sharing a storage_dir must agree on of webhooks: all zero
// without notify_url.
type notifyUse struct {
	urls      string // notify_url, one a line
	secret    string // notify_secret
	publicURL string // public_url, the base of the events' url
}

// storageOptions names the options behind the fields of packager.Settings; a field not
// named here is named in snake_case.
var storageOptions = map[string]string{
	"Header":      "origin_header",
	"Concurrency": "fetch_concurrency",
	"MaxOutput":   "limits output_size",
}

var (
	claimsMu sync.Mutex
	// claims are the storage directories in use by the handlers of each loaded config
	// (told apart by its context), with the settings of the first handler and the
	// number of handlers using them.
	claims = map[storageClaim]*storageClaimed{}
	// storeClaims are the stores (store s3's endpoint, bucket and prefix) in use by the
	// handlers of each loaded config, with their storage directory: one store, one
	// directory (two managers of one process on one store would hold leases under one
	// node name).
	storeClaims = map[storeClaim]*storeClaimed{}
)

type storeClaim struct {
	identity string
	config   <-chan struct{}
}

type storeClaimed struct {
	dir   string
	users int
}

type storageClaim struct {
	dir    string
	config <-chan struct{}
}

type storageClaimed struct {
	use   storageUse
	users int
}

// claimStorage registers a handler of config (its context's Done channel) using dir
// with use. Another handler of the same config using dir with other settings is an
// error naming them (not their values: origin_header holds credentials); a handler of
// another config, as in a reload, may change them. release ends the use.
func claimStorage(dir string, config <-chan struct{}, use storageUse) (release func(), err error) {
	claimsMu.Lock()
	defer claimsMu.Unlock()
	var sk storeClaim
	if use.store != nil {
		sk = storeClaim{use.store.identity(), config}
		if sc := storeClaims[sk]; sc != nil && sc.dir != dir {
			return nil, fmt.Errorf("store s3: another stream_downloads handler of this config uses the same bucket and prefix (endpoint %s, bucket %s, prefix %q) with another storage_dir (%s, here %s); "+
				"handlers of one instance that share a store must share its storage_dir too (the same downloads), or use another prefix",
				use.store.Endpoint, use.store.Bucket, use.store.Prefix, sc.dir, dir)
		}
	}
	k := storageClaim{dir, config}
	c := claims[k]
	if c == nil {
		c = &storageClaimed{use: use}
		claims[k] = c
	} else if diff := use.differences(c.use); len(diff) > 0 {
		return nil, fmt.Errorf("storage_dir %s: another stream_downloads handler of this config uses it with different settings (%s); "+
			"handlers that share a storage_dir share its downloads and packaging, so they must agree on %s: "+
			"give each its own storage_dir, or the same settings", dir, strings.Join(diff, ", "), strings.Join(storageOptionNames(), ", "))
	}
	c.users++
	var sc *storeClaimed
	if use.store != nil {
		if sc = storeClaims[sk]; sc == nil {
			sc = &storeClaimed{dir: dir}
			storeClaims[sk] = sc
		}
		sc.users++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			claimsMu.Lock()
			defer claimsMu.Unlock()
			if c.users--; c.users == 0 {
				delete(claims, k)
			}
			if sc != nil {
				if sc.users--; sc.users == 0 {
					delete(storeClaims, sk)
				}
			}
		})
	}, nil
}

// differences names the options on which u and o differ.
func (u storageUse) differences(o storageUse) []string {
	var diff []string
	if u.origin != o.origin {
		diff = append(diff, "origin")
	}
	switch {
	case (u.store == nil) != (o.store == nil):
		diff = append(diff, "store")
	case u.store != nil:
		a, b := reflect.ValueOf(*u.store), reflect.ValueOf(*o.store)
		for i := range a.NumField() {
			if a.Field(i).Interface() != b.Field(i).Interface() {
				name, _, _ := strings.Cut(a.Type().Field(i).Tag.Get("json"), ",")
				diff = append(diff, "store s3 "+name)
			}
		}
	}
	if u.notify.urls != o.notify.urls {
		diff = append(diff, "notify_url")
	}
	if u.notify.secret != o.notify.secret {
		diff = append(diff, "notify_secret")
	}
	if u.notify.publicURL != o.notify.publicURL {
		diff = append(diff, "public_url (the webhooks' url)")
	}
	a, b := reflect.ValueOf(u.settings), reflect.ValueOf(o.settings)
	for i := range a.NumField() {
		if !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			diff = append(diff, storageOption(a.Type().Field(i).Name))
		}
	}
	return diff
}

// storageOptionNames names the options that handlers sharing a storage_dir must agree on.
func storageOptionNames() []string {
	names := []string{"origin", "store", "notify_url", "notify_secret", "public_url (with notify_url)"}
	t := reflect.TypeFor[packager.Settings]()
	for i := range t.NumField() {
		names = append(names, storageOption(t.Field(i).Name))
	}
	return names
}

// storageOption names the option of a field of packager.Settings.
func storageOption(field string) string {
	if opt, ok := storageOptions[field]; ok {
		return opt
	}
	return snakeCase(field)
}

// snakeCase turns a Go field name (MaxHeight) into its option's name (max_height).
func snakeCase(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
