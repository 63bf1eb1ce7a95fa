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
)

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
	var once sync.Once
	return func() {
		once.Do(func() {
			claimsMu.Lock()
			defer claimsMu.Unlock()
			if c.users--; c.users == 0 {
				delete(claims, k)
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
	names := []string{"origin"}
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
