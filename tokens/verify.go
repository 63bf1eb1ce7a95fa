package tokens

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Leeway is the clock skew allowed on exp and nbf.
const Leeway = 60 * time.Second

// MaxTokenLen bounds the length of a token; longer ones are refused before any parsing.
const MaxTokenLen = 16 << 10

// ErrInvalid is wrapped by every error of Verify: the token is refused (401).
var ErrInvalid = errors.New("invalid token")

// now is the clock seam.
var now = time.Now

// invalidError is a refusal whose message is one short line safe to show a client: it
// never holds the token or key material.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }
func (e *invalidError) Unwrap() error { return ErrInvalid }

func invalid(msg string) error { return &invalidError{msg} }

// Reason is a short name of why Verify refused a token, for metrics: "expired",
// "not_yet_valid", "bad_signature", "unknown_key", "algorithm", "malformed" or
// "invalid" (the claims' types, a missing sub or kid, …); "" for nil.
func Reason(err error) string {
	switch err {
	case nil:
		return ""
	case errExpired:
		return "expired"
	case errNotYet:
		return "not_yet_valid"
	case errBadSignature:
		return "bad_signature"
	case errUnknownKID:
		return "unknown_key"
	case errAlg, errAlgUnknown:
		return "algorithm"
	case errMalformed, errTooLong, errEmpty:
		return "malformed"
	}
	return "invalid"
}

var (
	errEmpty        = invalid("no token")
	errTooLong      = invalid("token too long")
	errMalformed    = invalid("malformed token")
	errAlg          = invalid("algorithm not allowed for this key")
	errAlgUnknown   = invalid("algorithm not allowed")
	errBadSignature = invalid("bad signature")
	errNoKID        = invalid("token has no key id (kid)")
	errKIDType      = invalid("kid must be a string")
	errKIDMismatch  = invalid("kid in header and claims differ")
	errUnknownKID   = invalid("unknown key id")
	errCrit         = invalid("unsupported critical header")
	errExpired      = invalid("token expired")
	errNotYet       = invalid("token not valid yet")
	errNoSub        = invalid("token has no subject (sub)")
	errSubType      = invalid("sub must be a string")
	errExp          = invalid("exp must be a number of seconds")
	errNbf          = invalid("nbf must be a number of seconds")
	errDownloadable = invalid("downloadable must be true or false")
)

// allowedAlgs are the only algorithms ever accepted; each key further accepts only its
// own (Key.Alg).
var allowedAlgs = []string{AlgRS256, AlgES256, AlgEdDSA}

// Verifier checks tokens against a key set. It is safe for concurrent use.
type Verifier struct {
	keys      map[string]*Key
	parser    *jwt.Parser
	validator *jwt.Validator // exp and nbf of cached tokens, as the parser checks them
	cache     *lru           // nil: no cache

	sigChecks atomic.Uint64 // signature verifications attempted
	hits      atomic.Uint64
	misses    atomic.Uint64
}

// timeOptions check exp and nbf, when present, with Leeway against the clock seam.
func timeOptions() []jwt.ParserOption {
	return []jwt.ParserOption{jwt.WithLeeway(Leeway), jwt.WithTimeFunc(func() time.Time { return now() })}
}

// NewVerifier returns a verifier of tokens signed by keys, which remembers up to
// cacheSize verified tokens (0: none) so that a token presented again (the range
// requests of one download) costs no signature check. Key ids must be unique.
func NewVerifier(keys []*Key, cacheSize int) (*Verifier, error) {
	if len(keys) == 0 {
		return nil, errors.New("no signing key")
	}
	v := &Verifier{
		keys:      make(map[string]*Key, len(keys)),
		parser:    jwt.NewParser(append(timeOptions(), jwt.WithValidMethods(allowedAlgs), jwt.WithStrictDecoding())...),
		validator: jwt.NewValidator(timeOptions()...),
	}
	for _, k := range keys {
		if err := k.check(); err != nil {
			return nil, err
		}
		if _, dup := v.keys[k.ID]; dup {
			return nil, fmt.Errorf("key id %q is configured more than once", k.ID)
		}
		v.keys[k.ID] = k
	}
	if cacheSize > 0 {
		v.cache = newLRU(cacheSize)
	}
	return v, nil
}

// CacheStats reports the verification cache's hits and misses since the start, and
// how many tokens it holds.
func (v *Verifier) CacheStats() (hits, misses uint64, size int) {
	return v.hits.Load(), v.misses.Load(), v.cache.len()
}

// tokenClaims is what the jwt parser decodes a token's claims into. It keeps them
// undecoded (exact member names: JSON is case-sensitive, encoding/json is not) but for
// exp and nbf, which the parser's validator checks after the signature; then it calls
// Validate, which decodes the rest strictly.
type tokenClaims struct {
	jwt.RegisteredClaims `json:"-"` // ExpiresAt and NotBefore; the rest unused

	raw    map[string]json.RawMessage
	claims *Claims // set by Validate
}

func (t *tokenClaims) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &t.raw); err != nil {
		return err
	}
	// An absent or malformed exp or nbf is left nil here; Validate refuses the latter.
	if d, ok := parseNumericDate(t.raw["exp"]); ok {
		t.ExpiresAt = &jwt.NumericDate{Time: d}
	}
	if d, ok := parseNumericDate(t.raw["nbf"]); ok {
		t.NotBefore = &jwt.NumericDate{Time: d}
	}
	return nil
}

// Validate is called by the jwt parser after the signature and time checks.
func (t *tokenClaims) Validate() error {
	c, err := decodeClaims(t.raw)
	t.claims = c
	return err
}

// Verify checks a token and returns its claims:
//   - the signature, with the key named by kid: the JWT header's "kid", else a "kid"
//     claim (when both are present they must be equal);
//   - the algorithm must be that key's Alg(): "none", HMAC and an algorithm of another
//     key type are refused; a "crit" header is refused;
//   - exp and nbf, when present (neither is required), with Leeway; a token without exp
//     does not expire;
//   - claim types, strictly: sub a non-empty string, exp and nbf numbers, downloadable
//     a JSON boolean (absent: false), accessRules at most MaxRules valid rules.
//
// Any failure is an error wrapping ErrInvalid whose message is one short line safe to
// show a client. The returned claims must not be modified.
func (v *Verifier) Verify(token string) (*Claims, error) {
	c, _, err := v.VerifyCached(token)
	return c, err
}

// VerifyCached is Verify that also reports whether the token was found in the cache of
// verified tokens (its signature not checked again).
func (v *Verifier) VerifyCached(token string) (*Claims, bool, error) {
	switch {
	case token == "":
		return nil, false, errEmpty
	case len(token) > MaxTokenLen:
		return nil, false, errTooLong
	}
	var h [sha256.Size]byte
	if v.cache != nil {
		h = sha256.Sum256([]byte(token))
		if tc := v.cache.get(h); tc != nil {
			if err := v.validator.Validate(&tc.RegisteredClaims); err != nil {
				v.cache.remove(h)
				return nil, true, claimsError(err)
			}
			v.hits.Add(1)
			cp := *tc.claims
			return &cp, true, nil
		}
		v.misses.Add(1)
	}
	tc, err := v.verify(token)
	if err != nil {
		return nil, false, err
	}
	if v.cache != nil {
		v.cache.put(h, tc)
	}
	cp := *tc.claims
	return &cp, false, nil
}

func (v *Verifier) verify(token string) (*tokenClaims, error) {
	tc := &tokenClaims{}
	var key *Key
	var keyErr error
	_, err := v.parser.ParseWithClaims(token, tc, func(t *jwt.Token) (any, error) {
		key, keyErr = v.keyFor(t, tc.raw)
		if keyErr != nil {
			return nil, keyErr
		}
		v.sigChecks.Add(1)
		return key.Public, nil
	})
	switch {
	case keyErr != nil:
		return nil, keyErr
	case err == nil:
	case errors.Is(err, jwt.ErrTokenMalformed):
		return nil, errMalformed
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// alg missing or unknown to the library.
		return nil, errAlgUnknown
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if key == nil {
			// The method check failed before the key was looked up: none, HMAC, ….
			return nil, errAlgUnknown
		}
		return nil, errBadSignature
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return nil, claimsError(err)
	default:
		return nil, errMalformed
	}
	tc.claims.KeyID = key.ID
	return tc, nil
}

// claimsError maps the jwt validator's error: a claim of the wrong type (Validate's)
// first, then expiry, then not-before.
func claimsError(err error) error {
	var ie *invalidError
	switch {
	case errors.As(err, &ie):
		return ie
	case errors.Is(err, jwt.ErrTokenExpired):
		return errExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return errNotYet
	}
	return errMalformed
}

// keyFor picks the key that must have signed t, and checks t's algorithm against it.
func (v *Verifier) keyFor(t *jwt.Token, raw map[string]json.RawMessage) (*Key, error) {
	if raw == nil {
		// The claims are JSON null: the parser would hand its validator nil claims.
		return nil, errNoSub
	}
	if _, ok := t.Header["crit"]; ok {
		return nil, errCrit
	}
	var kid string
	hk, inHeader := t.Header["kid"]
	if inHeader {
		s, ok := hk.(string)
		if !ok {
			return nil, errKIDType
		}
		kid = s
	}
	if ck, inClaims := raw["kid"]; inClaims {
		var s string
		if isNull(ck) || json.Unmarshal(ck, &s) != nil {
			return nil, errKIDType
		}
		if inHeader && s != kid {
			return nil, errKIDMismatch
		}
		kid = s
	}
	if kid == "" {
		return nil, errNoKID
	}
	k := v.keys[kid]
	if k == nil {
		return nil, errUnknownKID
	}
	if t.Method == nil || t.Method.Alg() != k.Alg() {
		return nil, errAlg
	}
	return k, nil
}

// decodeClaims reads the claims this package knows, strictly; others are ignored.
func decodeClaims(raw map[string]json.RawMessage) (*Claims, error) {
	c := &Claims{}
	sub, ok := raw["sub"]
	if !ok {
		return nil, errNoSub
	}
	if isNull(sub) || json.Unmarshal(sub, &c.Subject) != nil {
		return nil, errSubType
	}
	if c.Subject == "" {
		return nil, errNoSub
	}
	if r, ok := raw["exp"]; ok {
		if c.Expires, ok = parseNumericDate(r); !ok {
			return nil, errExp
		}
	}
	if r, ok := raw["nbf"]; ok {
		if c.NotBefore, ok = parseNumericDate(r); !ok {
			return nil, errNbf
		}
	}
	if r, ok := raw["downloadable"]; ok {
		if isNull(r) || json.Unmarshal(r, &c.Downloadable) != nil {
			return nil, errDownloadable
		}
	}
	if r, ok := raw["accessRules"]; ok {
		rules, err := parseRules(r)
		if err != nil {
			return nil, invalid(err.Error())
		}
		c.AccessRules = rules
	}
	if r, ok := raw["clip"]; ok {
		clip, err := parseClip(r)
		if err != nil {
			return nil, invalid(err.Error())
		}
		c.Clip = clip
	}
	return c, nil
}

// signedClaims are the claims Sign writes, in this order.
type signedClaims struct {
	Subject      string `json:"sub"`
	KeyID        string `json:"kid"`
	Expires      *int64 `json:"exp,omitempty"`
	NotBefore    *int64 `json:"nbf,omitempty"`
	Downloadable *bool  `json:"downloadable,omitempty"`
	AccessRules  []Rule `json:"accessRules,omitempty"`
	Clip         *Clip  `json:"clip,omitempty"`

	jwt.RegisteredClaims `json:"-"` // the methods of jwt.Claims; Sign sets the claims above
}

// Sign issues a token for subject (the video id) signed with k, which needs its
// private half: header {alg: k.Alg(), kid, typ: JWT}; claims sub, kid, exp and nbf
// (when set; Unix seconds), downloadable (when set), accessRules (when any) and clip
// (when set). A zero
// r.Expires issues a token that never expires: callers set a lifetime. r is checked
// with the rules Verify applies.
func Sign(k *Key, subject string, r Request) (string, error) {
	if k == nil || k.Private == nil {
		return "", errors.New("the signing key has no private half")
	}
	if err := k.check(); err != nil {
		return "", err
	}
	if subject == "" {
		return "", errors.New("no subject (video id)")
	}
	rules, err := compileRules(r.AccessRules)
	if err != nil {
		return "", err
	}
	if r.Clip != nil {
		if err := r.Clip.check(); err != nil {
			return "", err
		}
	}
	c := &signedClaims{Subject: subject, KeyID: k.ID, Downloadable: r.Downloadable, AccessRules: rules, Clip: r.Clip}
	for _, f := range []struct {
		t    time.Time
		dst  **int64
		name string
	}{{r.Expires, &c.Expires, "exp"}, {r.NotBefore, &c.NotBefore, "nbf"}} {
		if f.t.IsZero() {
			continue
		}
		s := f.t.Unix()
		if s < 0 || s > maxNumericDate {
			return "", fmt.Errorf("%s is out of range", f.name)
		}
		*f.dst = &s
	}
	if c.Expires != nil && c.NotBefore != nil && *c.NotBefore >= *c.Expires {
		return "", errors.New("nbf must be before exp")
	}
	var method jwt.SigningMethod
	var key any
	switch k.Alg() {
	case AlgRS256:
		method = jwt.SigningMethodRS256
		key, _ = k.Private.(*rsa.PrivateKey)
	case AlgES256:
		method = jwt.SigningMethodES256
		key, _ = k.Private.(*ecdsa.PrivateKey)
	case AlgEdDSA:
		method = jwt.SigningMethodEdDSA
		key, _ = k.Private.(ed25519.PrivateKey)
	}
	if key == nil {
		return "", fmt.Errorf("private key type %T is not supported for signing", k.Private)
	}
	t := jwt.NewWithClaims(method, c)
	t.Header["kid"] = k.ID
	return t.SignedString(key)
}

// lru is a bounded map of verified tokens (by SHA-256 of the token) to their claims,
// least recently used evicted first.
type lru struct {
	mu   sync.Mutex
	max  int
	m    map[[sha256.Size]byte]*lruEntry
	root lruEntry // sentinel: root.next is the most recent
}

type lruEntry struct {
	key        [sha256.Size]byte
	claims     *tokenClaims
	prev, next *lruEntry
}

func newLRU(max int) *lru {
	c := &lru{max: max, m: make(map[[sha256.Size]byte]*lruEntry, min(max, 1024))}
	c.root.next, c.root.prev = &c.root, &c.root
	return c
}

func (c *lru) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func (c *lru) unlink(e *lruEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
}

func (c *lru) pushFront(e *lruEntry) {
	e.prev, e.next = &c.root, c.root.next
	c.root.next.prev = e
	c.root.next = e
}

func (c *lru) get(k [sha256.Size]byte) *tokenClaims {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[k]
	if e == nil {
		return nil
	}
	if c.root.next != e {
		c.unlink(e)
		c.pushFront(e)
	}
	return e.claims
}

func (c *lru) put(k [sha256.Size]byte, claims *tokenClaims) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[k]; e != nil {
		e.claims = claims
		c.unlink(e)
		c.pushFront(e)
		return
	}
	e := &lruEntry{key: k, claims: claims}
	c.m[k] = e
	c.pushFront(e)
	for len(c.m) > c.max {
		old := c.root.prev
		c.unlink(old)
		delete(c.m, old.key)
	}
}

func (c *lru) remove(k [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[k]; e != nil {
		c.unlink(e)
		delete(c.m, k)
	}
}
