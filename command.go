package streamdownloads

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/stream-downloads/caddy-stream-downloads/tokens"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "stream-downloads",
		Usage: "keygen [--type rsa|ec|ed25519] | sign --key <file> --video <id> [flags]",
		Short: "Makes signing keys and signed tokens for stream_downloads",
		Long: `
Tools for the signed URLs of stream_downloads (no running Caddy needed).

  keygen  prints a new key pair: its kid, the private key as PEM and as a base64 JWK,
          and the public key likewise. Save the private PEM to a file and configure it
          with "signing_key <kid> <file>".
  sign    prints a token for a video, signed with a private key file, to use as
          /<token>/downloads/default.mp4.
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(keygenCommand(), signCommand())
		},
	})
}

func keygenCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "keygen",
		Short: "Prints a new signing key pair (kid, PEM, base64 JWK)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kind, _ := cmd.Flags().GetString("type")
			k, err := tokens.GenerateKey(kind)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "kid: %s\nalg: %s\n\n", k.ID, k.Alg())
			for _, private := range []bool{true, false} {
				which := "public"
				if private {
					which = "private"
				}
				pem, err := k.PEM(private)
				if err != nil {
					return err
				}
				jwk, err := k.JWKBase64(private)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%s key (PEM):\n%s\n%s key (JWK, base64):\n%s\n\n", which, pem, which, jwk)
			}
			return nil
		},
	}
	c.Flags().String("type", "rsa", "key type: rsa (RS256), ec (ES256) or ed25519 (EdDSA)")
	return c
}

func signCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "sign",
		Short: "Prints a signed token for a video",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			file, _ := f.GetString("key")
			kid, _ := f.GetString("kid")
			video, _ := f.GetString("video")
			expires, _ := f.GetDuration("expires")
			notBefore, _ := f.GetDuration("not-before")
			rules, _ := f.GetString("access-rules")
			if file == "" || video == "" {
				return fmt.Errorf("--key and --video are required")
			}
			keys, err := tokens.LoadKeys(kid, file)
			if err != nil {
				return fmt.Errorf("--key: %w", err)
			}
			var key *tokens.Key
			for _, k := range keys {
				if k.Private != nil && (kid == "" || k.ID == kid) {
					key = k
					break
				}
			}
			if key == nil {
				return fmt.Errorf("--key: %s holds no private key (with --kid %q)", file, kid)
			}
			req := tokens.Request{Expires: time.Now().Add(expires)}
			if notBefore != 0 {
				req.NotBefore = time.Now().Add(notBefore)
			}
			if f.Changed("downloadable") {
				d, _ := f.GetBool("downloadable")
				req.Downloadable = &d
			}
			if rules != "" {
				dec := json.NewDecoder(strings.NewReader(rules))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&req.AccessRules); err != nil {
					return fmt.Errorf("--access-rules: %w", err)
				}
			}
			tok, err := tokens.Sign(key, video, req)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	f := c.Flags()
	f.String("key", "", "file with the private key (PEM, JWK or JWK set)")
	f.String("kid", "", "key id: required for a PEM file; a JWK carries its own")
	f.String("video", "", "video id the token is for (its sub)")
	f.Duration("expires", time.Hour, "lifetime of the token")
	f.Duration("not-before", 0, "the token is valid from now plus this")
	f.Bool("downloadable", false, "allow /downloads/ files of a private video")
	f.String("access-rules", "", `JSON list of access rules, e.g. '[{"type":"ip.src","ip":["203.0.113.0/24"],"action":"allow"},{"type":"any","action":"block"}]'`)
	return c
}
