package streamdownloads

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/stream-downloads/caddy-stream-downloads/tokens"
)

// perRequestOptions keep the placeholders that are not known when the config loads
// for each request ({video_id}, {http.*}, {time.*}); their load-time ones are expanded.
var perRequestOptions = map[string]bool{"origin": true}

// loadReplacer knows the placeholders whose values hold while a config runs, expanded
// once as it loads: {env.*}, {file.*} and {system.*} (as caddy.NewReplacer reads them).
func loadReplacer() *caddy.Replacer {
	global := caddy.NewReplacer()
	repl := caddy.NewEmptyReplacer()
	repl.Map(func(key string) (any, bool) {
		if isLoadPlaceholder(key) {
			return global.Get(key)
		}
		return nil, false
	})
	return repl
}

func isLoadPlaceholder(key string) bool {
	return strings.HasPrefix(key, "env.") || strings.HasPrefix(key, "file.") || strings.HasPrefix(key, "system.")
}

// hasLoadPlaceholder reports whether s holds a placeholder that loadReplacer expands:
// such a value is checked only once expanded, when the config loads.
func hasLoadPlaceholder(s string) bool {
	for _, p := range []string{"{env.", "{file.", "{system."} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// expandPlaceholders replaces the load-time placeholders ({env.*}, {file.*},
// {system.*}) in every string option, secrets included. The options are walked by
// reflection, so that an option added later takes placeholders too. A placeholder that
// comes out empty (an unset variable, a missing file) fails, naming the option, rather
// than leaving an empty secret or path; so does one that is not known when the config
// loads, except in perRequestOptions. Errors never hold an option's value.
func (s *StreamDownloads) expandPlaceholders() error {
	return expandValue(loadReplacer(), reflect.ValueOf(s).Elem(), "")
}

// expandValue expands the strings held by v (a string, a slice or map of them, or a
// struct of such fields), opt naming the option in errors.
func expandValue(repl *caddy.Replacer, v reflect.Value, opt string) error {
	switch v.Kind() {
	case reflect.String:
		out, err := expandString(repl, opt, v.String())
		if err != nil {
			return err
		}
		v.SetString(out)
	case reflect.Pointer:
		if !v.IsNil() {
			return expandValue(repl, v.Elem(), opt)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if opt != "" {
				name = opt + " " + name
			}
			if err := expandValue(repl, v.Field(i), name); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 { // bytes and raw JSON
			return nil
		}
		for i := range v.Len() {
			if err := expandValue(repl, v.Index(i), opt); err != nil {
				return err
			}
		}
	case reflect.Map:
		if v.IsNil() || v.Type().Key().Kind() != reflect.String {
			return nil
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		iter := v.MapRange()
		for iter.Next() {
			key, err := expandString(repl, opt, iter.Key().String())
			if err != nil {
				return err
			}
			val := reflect.New(v.Type().Elem()).Elem()
			val.Set(iter.Value())
			if val.Kind() == reflect.Slice { // a copy: the config's own slice stays as it was
				val.Set(reflect.AppendSlice(reflect.MakeSlice(val.Type(), 0, val.Len()), val))
			}
			if err := expandValue(repl, val, opt+" "+iter.Key().String()); err != nil {
				return err
			}
			out.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), val)
		}
		v.Set(out)
	}
	return nil
}

// expandString expands the load-time placeholders of one option's value.
func expandString(repl *caddy.Replacer, opt, in string) (string, error) {
	perRequest := perRequestOptions[opt]
	if !perRequest {
		if _, err := repl.ReplaceOrErr(in, false, true); err != nil {
			// The error names the placeholder, which may be part of a secret.
			return "", fmt.Errorf("%s: holds a placeholder that is not known when the config loads: only {env.*}, {file.*} and {system.*} are (a literal brace is written \\{)", opt)
		}
	}
	out, err := repl.ReplaceOrErr(in, true, false)
	if err != nil {
		return "", fmt.Errorf("%s: %v (an environment variable unset or empty, or a file missing, unreadable or empty)", opt, err)
	}
	return out, nil
}

// loadSigningKey reads the keys of sk: the file it names or, given through a
// placeholder such as {env.KEY} or {file./run/secrets/key}, the key itself (PEM, a JWK
// or its base64). raw is sk before its placeholders were expanded: an error names that,
// never what it expanded to.
func loadSigningKey(sk, raw SigningKey) ([]*tokens.Key, error) {
	if sk.File != raw.File && isKeyMaterial(sk.File) {
		ks, err := tokens.ParseKeys(sk.KID, []byte(sk.File))
		if err != nil {
			return nil, fmt.Errorf("signing_key %s: the key from %s: %w", sk.KID, raw.File, err)
		}
		return ks, nil
	}
	ks, err := tokens.LoadKeys(sk.KID, sk.File)
	if err != nil {
		msg := err.Error()
		if sk.File != raw.File {
			msg = strings.ReplaceAll(msg, sk.File, raw.File)
		}
		return nil, fmt.Errorf("signing_key %s: %s", sk.KID, msg)
	}
	return ks, nil
}

// isKeyMaterial tells a key (PEM, a JWK or JWK set as JSON, or the base64 of either)
// from a file name.
func isKeyMaterial(s string) bool {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "-----BEGIN ") || strings.HasPrefix(s, "{") || strings.ContainsAny(s, "\r\n") {
		return true
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			b = bytes.TrimSpace(b)
			if bytes.HasPrefix(b, []byte("{")) || bytes.Contains(b, []byte("-----BEGIN ")) {
				return true
			}
		}
	}
	return false
}

// placeholderRE matches a placeholder, as caddy.Replacer reads them.
var placeholderRE = regexp.MustCompile(`\{[^{}]*\}`)
