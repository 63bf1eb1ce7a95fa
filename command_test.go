package streamdownloads

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/tokens"
)

// TestKeygenAndSign runs the two subcommands as an operator would: keygen, save the
// private PEM, sign a token with it, and check the token with the public JWK keygen printed.
func TestKeygenAndSign(t *testing.T) {
	for _, kind := range []string{"rsa", "ec", "ed25519"} {
		t.Run(kind, func(t *testing.T) {
			var out bytes.Buffer
			keygen := keygenCommand()
			keygen.SetOut(&out)
			keygen.SetArgs([]string{"--type", kind})
			if err := keygen.Execute(); err != nil {
				t.Fatal(err)
			}
			text := out.String()
			kid := regexp.MustCompile(`(?m)^kid: (\S+)$`).FindStringSubmatch(text)
			priv := regexp.MustCompile(`(?s)-----BEGIN PRIVATE KEY-----.*?-----END PRIVATE KEY-----\n`).FindString(text)
			pubJWK := regexp.MustCompile(`(?m)^public key \(JWK, base64\):\n(\S+)$`).FindStringSubmatch(text)
			if kid == nil || priv == "" || pubJWK == nil {
				t.Fatalf("keygen output lacks kid, private PEM or public JWK:\n%s", text)
			}
			keyFile := filepath.Join(t.TempDir(), "key.pem")
			if err := os.WriteFile(keyFile, []byte(priv), 0o600); err != nil {
				t.Fatal(err)
			}

			out.Reset()
			sign := signCommand()
			sign.SetOut(&out)
			sign.SetArgs([]string{"--key", keyFile, "--kid", kid[1], "--video", "vid-1", "--downloadable",
				"--expires", "10m", "--access-rules", `[{"type":"ip.src","ip":["192.0.2.0/24"],"action":"allow"}]`})
			if err := sign.Execute(); err != nil {
				t.Fatal(err)
			}
			pub, err := tokens.ParseKeys("", []byte(pubJWK[1]))
			if err != nil {
				t.Fatal(err)
			}
			v, err := tokens.NewVerifier(pub, 0)
			if err != nil {
				t.Fatal(err)
			}
			c, err := v.Verify(strings.TrimSpace(out.String()))
			if err != nil {
				t.Fatalf("the signed token does not verify with keygen's public key: %v", err)
			}
			if c.Subject != "vid-1" || !c.Downloadable || len(c.AccessRules) != 1 || c.Expires.IsZero() {
				t.Errorf("claims %+v", c)
			}
		})
	}
}
