package tokens

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// jwk is a JSON Web Key's members, undecoded, to read those this package decides on
// (kid, use, kty, crv, alg) by their exact names: JSON member names are case-sensitive.
type jwk map[string]json.RawMessage

func (j jwk) str(name string) (string, bool, error) {
	raw, ok := j[name]
	if !ok {
		return "", false, nil
	}
	var s string
	if isNull(raw) || json.Unmarshal(raw, &s) != nil {
		return "", true, fmt.Errorf("JWK member %q must be a string", name)
	}
	return s, true, nil
}

func parseJWKJSON(kid string, data []byte) ([]*Key, error) {
	var top jwk
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, errors.New("key data is not valid JSON")
	}
	raw, isSet := top["keys"]
	if !isSet {
		k, err := parseJWK(kid, top, data)
		if err != nil {
			return nil, err
		}
		return []*Key{k}, nil
	}
	var set []json.RawMessage
	if err := json.Unmarshal(raw, &set); err != nil || set == nil {
		return nil, errors.New(`JWK set: "keys" must be an array of JWKs`)
	}
	if len(set) == 0 {
		return nil, errors.New("JWK set holds no key")
	}
	keys := make([]*Key, 0, len(set))
	for i, data := range set {
		var j jwk
		if err := json.Unmarshal(data, &j); err != nil || j == nil {
			return nil, errors.New(`JWK set: "keys" must be an array of JWKs`)
		}
		k, err := parseJWK(kid, j, data)
		if err != nil {
			return nil, fmt.Errorf("JWK set: key %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// parseJWK reads one JWK, j being data's members; its own "kid" wins over kid. The
// key material is go-jose's to read.
func parseJWK(kid string, j jwk, data []byte) (*Key, error) {
	own, hasKID, err := j.str("kid")
	if err != nil {
		return nil, err
	}
	if hasKID {
		kid = own
	}
	if kid == "" {
		return nil, errors.New(`the JWK has no "kid" and no key id was given`)
	}
	if use, ok, err := j.str("use"); err != nil {
		return nil, err
	} else if ok && use != "sig" {
		return nil, fmt.Errorf("JWK %q: use %q is not \"sig\"", kid, use)
	}
	kty, ok, err := j.str("kty")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("JWK %q: \"kty\" is missing", kid)
	}
	crv, _, err := j.str("crv")
	if err != nil {
		return nil, err
	}
	switch {
	case kty == "RSA":
	case kty == "EC" && crv != "P-256":
		return nil, fmt.Errorf("JWK %q: EC curve %q is not supported (only P-256, for ES256)", kid, crv)
	case kty == "OKP" && crv != "Ed25519":
		return nil, fmt.Errorf("JWK %q: OKP curve %q is not supported (only Ed25519, for EdDSA)", kid, crv)
	case kty == "EC", kty == "OKP":
	case kty == "oct":
		return nil, fmt.Errorf("JWK %q: symmetric (oct) keys are not supported: HMAC is never accepted", kid)
	default:
		return nil, fmt.Errorf("JWK %q: key type %q is not supported (RSA, EC or OKP)", kid, kty)
	}
	var jk jose.JSONWebKey
	if err := jk.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("JWK %q: %s", kid, joseError(err))
	}
	k := &Key{ID: kid, Public: jk.Key}
	if priv, ok := jk.Key.(crypto.Signer); ok {
		k.Private, k.Public = priv, priv.Public()
	}
	if priv, ok := k.Private.(*ecdsa.PrivateKey); ok {
		// go-jose does not check that d is the private half of x and y.
		d, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), priv.D.FillBytes(make([]byte, 32)))
		if err != nil || !d.PublicKey.Equal(k.Public) {
			return nil, fmt.Errorf("JWK %q: EC private key does not match x and y", kid)
		}
		k.Private = d
	}
	if err := k.check(); err != nil {
		return nil, err
	}
	if alg, ok, err := j.str("alg"); err != nil {
		return nil, err
	} else if ok && alg != k.Alg() {
		return nil, fmt.Errorf("JWK %q: alg %q is not supported for a %s key (only %s)", kid, alg, kty, k.Alg())
	}
	return k, nil
}

// joseError words a go-jose error without its package prefix.
func joseError(err error) string {
	var b64err base64.CorruptInputError
	if errors.As(err, &b64err) {
		return "a key member is not base64url"
	}
	_, msg, ok := strings.Cut(err.Error(), "go-jose: ")
	if !ok {
		msg = err.Error()
	}
	return msg
}
