package tokens

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
)

// maxKeyFile bounds what LoadKeys reads.
const maxKeyFile = 1 << 20

// LoadKeys reads the keys of the file at path; see ParseKeys.
func LoadKeys(kid, path string) ([]*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%s: key file larger than %d bytes", path, maxKeyFile)
	}
	keys, err := ParseKeys(kid, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// ParseKeys reads keys from data, which is one of:
//   - PEM: PKIX ("PUBLIC KEY") or PKCS #1 ("RSA PUBLIC KEY") public keys, PKCS #1
//     ("RSA PRIVATE KEY"), PKCS #8 ("PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY") private
//     keys, or a "CERTIFICATE" (its public key). Several blocks are allowed as long as
//     they hold one key (a private key and its public half, say): PEM carries no key
//     id, so the key is named kid, which must not be empty;
//   - a JWK (RFC 7517) as JSON, or the standard or URL-safe base64 of that JSON, as
//     hosted video platforms hand keys out; base64 of PEM is read too;
//   - a JWK set, {"keys": [...]}, as JSON or base64.
//
// A JWK's own "kid" wins over the kid argument, which names only the JWKs that carry
// none. Key ids must be unique within data. Keys must be RSA of at least 2048 bits,
// ECDSA P-256 or Ed25519; a JWK's "alg", when present, must be the one the key type is
// used with (RS256, ES256, EdDSA) and its "use", when present, "sig".
//
// Errors say what is wrong without echoing key material.
func ParseKeys(kid string, data []byte) ([]*Key, error) {
	keys, err := parseKeys(kid, data, true)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if err := k.check(); err != nil {
			return nil, err
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("key id %q is used by more than one key", k.ID)
		}
		seen[k.ID] = true
	}
	return keys, nil
}

func parseKeys(kid string, data []byte, allowBase64 bool) ([]*Key, error) {
	trimmed := bytes.TrimSpace(data)
	switch {
	case len(trimmed) == 0:
		return nil, errors.New("no key data")
	case bytes.Contains(trimmed, []byte("-----BEGIN ")):
		return parsePEM(kid, trimmed)
	case trimmed[0] == '{':
		return parseJWKJSON(kid, trimmed)
	case allowBase64:
		dec, ok := decodeBase64(trimmed)
		if !ok {
			return nil, errors.New("key data is neither PEM, JWK JSON, nor base64 of either")
		}
		keys, err := parseKeys(kid, dec, false)
		if err != nil {
			return nil, fmt.Errorf("base64 key data: %w", err)
		}
		return keys, nil
	default:
		return nil, errors.New("key data is neither PEM nor JWK JSON")
	}
}

// decodeBase64 decodes standard or URL-safe base64, padded or not, ignoring whitespace.
func decodeBase64(b []byte) ([]byte, bool) {
	s := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, string(b))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if d, err := enc.DecodeString(s); err == nil {
			return d, true
		}
	}
	return nil, false
}

// parsePEM reads the PEM blocks of data, which must hold one key (public, private, or
// both halves of one pair).
func parsePEM(kid string, data []byte) ([]*Key, error) {
	var pubs []crypto.PublicKey
	var privs []crypto.Signer
	rest := data
	n := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		n++
		if _, encrypted := block.Headers["DEK-Info"]; encrypted || block.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, fmt.Errorf("PEM block %d: encrypted private keys are not supported", n)
		}
		switch block.Type {
		case "PUBLIC KEY":
			pub, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM block %d (PUBLIC KEY): not a valid PKIX public key", n)
			}
			pubs = append(pubs, pub)
		case "RSA PUBLIC KEY":
			pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM block %d (RSA PUBLIC KEY): not a valid PKCS #1 public key", n)
			}
			pubs = append(pubs, pub)
		case "CERTIFICATE":
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM block %d (CERTIFICATE): not a valid certificate", n)
			}
			pubs = append(pubs, cert.PublicKey)
		case "RSA PRIVATE KEY":
			priv, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM block %d (RSA PRIVATE KEY): not a valid PKCS #1 private key", n)
			}
			privs = append(privs, priv)
		case "EC PRIVATE KEY":
			priv, err := x509.ParseECPrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM block %d (EC PRIVATE KEY): not a valid SEC 1 private key", n)
			}
			privs = append(privs, priv)
		case "PRIVATE KEY":
			priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM block %d (PRIVATE KEY): not a valid PKCS #8 private key", n)
			}
			signer, ok := priv.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("PEM block %d (PRIVATE KEY): key type %T is not supported", n, priv)
			}
			privs = append(privs, signer)
		case "EC PARAMETERS":
			// openssl ecparam writes the curve before the key; the key names it too.
		default:
			return nil, fmt.Errorf("PEM block %d: type %q is not a supported key", n, block.Type)
		}
	}
	if n == 0 {
		return nil, errors.New("no PEM block found")
	}
	if len(pubs)+len(privs) == 0 {
		return nil, errors.New("no key in the PEM data")
	}
	k := &Key{ID: kid}
	if len(privs) > 0 {
		k.Private = privs[0]
		k.Public = privs[0].Public()
	} else {
		k.Public = pubs[0]
	}
	for _, p := range privs[min(1, len(privs)):] {
		if !sameKey(k.Public, p.Public()) {
			return nil, errors.New("the PEM data holds more than one key: give each its own file and key id")
		}
	}
	for _, p := range pubs {
		if !sameKey(k.Public, p) {
			return nil, errors.New("the PEM data holds more than one key: give each its own file and key id")
		}
	}
	if kid == "" {
		return nil, errors.New("a PEM key carries no key id: one must be given")
	}
	return []*Key{k}, nil
}

func sameKey(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}
