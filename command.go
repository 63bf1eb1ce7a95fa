package streamdownloads

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/stream-downloads/caddy-stream-downloads/packager"
	"github.com/stream-downloads/caddy-stream-downloads/packager/hls"
	"github.com/stream-downloads/caddy-stream-downloads/tokens"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "stream-downloads",
		Usage: "keygen [--type rsa|ec|ed25519] | sign --key <file> --video <id> [flags] | package <playlist-url> -o <file> [flags]",
		Short: "Packages HLS into an MP4 file; makes signing keys and signed tokens for stream_downloads",
		Long: `
Tools of stream_downloads (no running Caddy needed).

  package fetches an HLS stream and writes it as one MP4 (or M4A with --audio): the
          same bytes the module serves for the same source, with a progress bar.
  keygen  prints a new key pair: its kid, the private key as PEM and as a base64 JWK,
          and the public key likewise. Save the private PEM to a file and configure it
          with "signing_key <kid> <file>".
  sign    prints a token for a video, signed with a private key file, to use as
          /<token>/downloads/default.mp4.
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(keygenCommand(), signCommand(), packageCommand())
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
			if clip, _ := f.GetString("clip"); clip != "" {
				c, err := parseClipFlag(clip)
				if err != nil {
					return fmt.Errorf("--clip: %w", err)
				}
				req.Clip = c
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
	f.String("clip", "", "allow only clips within S-E seconds of the video, e.g. 10-25.5 (docs/clips.md)")
	return c
}

// parseClipFlag reads --clip S-E: seconds, 0 ≤ S < E.
func parseClipFlag(s string) (*tokens.Clip, error) {
	a, b, ok := strings.Cut(s, "-")
	start, err1 := strconv.ParseFloat(a, 64)
	end, err2 := strconv.ParseFloat(b, 64)
	if !ok || err1 != nil || err2 != nil || math.IsNaN(start) || math.IsInf(end, 0) || math.IsNaN(end) {
		return nil, fmt.Errorf("%q is not S-E (seconds, e.g. 10-25.5)", s)
	}
	if start < 0 || end <= start {
		return nil, fmt.Errorf("%q: want 0 <= S < E", s)
	}
	return &tokens.Clip{Start: start, End: end}, nil
}

// Exit statuses of `caddy stream-downloads package` (docs/cli.md).
const (
	exitFailed      = 1   // the packaging failed: the line on stderr says why
	exitUsage       = 2   // bad arguments or flags
	exitInterrupted = 130 // SIGINT (Ctrl-C), or the run's context cancelled
	exitTerminated  = 143 // SIGTERM
)

// packageIO is where the package command reads and writes: the process's by default,
// a test's otherwise.
type packageIO struct {
	stdout, stderr io.Writer
	stdoutTTY      bool       // stdout is a terminal: -o - is refused
	tty            bool       // stderr is a terminal: a progress bar, else plain lines
	width          func() int // the terminal's columns; nil: 80
	exit           func(code int)
	signals        bool // SIGINT and SIGTERM cancel the run
	now            func() time.Time
}

// processIO is packageIO of the process: os.Stdout, os.Stderr, os.Exit and the signals.
func processIO() *packageIO {
	fd := int(os.Stderr.Fd())
	return &packageIO{
		stdout: os.Stdout, stderr: os.Stderr,
		stdoutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		tty:       term.IsTerminal(fd),
		width: func() int {
			w, _, err := term.GetSize(fd)
			if err != nil {
				return 0
			}
			return w
		},
		exit:    os.Exit,
		signals: true,
		now:     time.Now,
	}
}

func packageCommand() *cobra.Command { return newPackageCommand(nil) }

// newPackageCommand is the package command on pio (nil: the process's).
func newPackageCommand(pio *packageIO) *cobra.Command {
	c := &cobra.Command{
		Use:   "package <playlist-url> -o <file>",
		Short: "Packages an HLS stream into an MP4 (or M4A) file, as the module does",
		Long: `
Fetches the HLS stream at <playlist-url> (a multivariant or a media playlist) and
writes it as one faststart MP4: the same bytes the stream_downloads module serves
for the same source and type. With --audio it writes the audio alone, an M4A.

The file is written next to <file> under a temporary name and renamed at the end:
a failure or Ctrl-C leaves no partial file (an existing <file> is replaced only by
a complete one). "-o -" writes to stdout once the file is complete (it is staged in
the temp directory first: an MP4's header is written last).

On a terminal a progress bar is drawn on stderr (percent, bytes fetched, rate,
ETA); otherwise a plain line every 10 % or 5 s. Exit status: 0 done; 1 failed, with
one line "package: <errorReasonCode>: <reason>" (the codes of the module's API:
not_found, live, origin_error, …); 2 bad usage; 130 interrupted (SIGINT), 143
terminated (SIGTERM). See docs/cli.md.
`,
		Example: `  caddy stream-downloads package https://origin.example.com/v1/master.m3u8 -o v1.mp4
  caddy stream-downloads package --audio --header "Authorization: Bearer $TOKEN" https://origin.example.com/v1/master.m3u8 -o v1.m4a
  caddy stream-downloads package --max-height 720 -q https://origin.example.com/v1/master.m3u8 -o - | ffprobe -`,
		RunE: func(cmd *cobra.Command, args []string) error {
			p := pio
			if p == nil {
				p = processIO()
			}
			if code := runPackage(cmd, args, p); code != 0 {
				p.exit(code)
			}
			return nil
		},
	}
	c.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		p := pio
		if p == nil {
			p = processIO()
		}
		fmt.Fprintf(p.stderr, "package: %v (see --help)\n", err)
		p.exit(exitUsage)
		return err
	})
	f := c.Flags()
	f.StringP("output", "o", "", `the file to write ("-": stdout); required`)
	f.Bool("audio", false, "write the audio alone, as an M4A (the module's audio download)")
	f.Int("max-height", 0, "take the tallest variant no taller than this (as max_height); 0: the best")
	f.StringArray("language", nil, "keep the alternative audio and subtitles of this language only, as languages (repeatable; default: all)")
	f.StringArray("header", nil, `a header on every origin request, "Name: value" (repeatable)`)
	f.StringArray("allow-host", nil, "a host besides the playlist's that playlists may point at, as allowed_hosts (repeatable)")
	f.Int("concurrency", hls.DefaultConcurrency, "parallel origin requests (as fetch_concurrency)")
	f.BoolP("quiet", "q", false, "no progress and no summary; failures are still said")
	f.BoolP("verbose", "v", false, "log the origin requests' retries, stalls and redirects on stderr")
	return c
}

// runPackage runs the package command and returns its exit status.
func runPackage(cmd *cobra.Command, args []string, pio *packageIO) int {
	usage := func(format string, a ...any) int {
		fmt.Fprintf(pio.stderr, "package: "+format+" (see --help)\n", a...)
		return exitUsage
	}
	f := cmd.Flags()
	out, _ := f.GetString("output")
	audio, _ := f.GetBool("audio")
	maxHeight, _ := f.GetInt("max-height")
	languages, _ := f.GetStringArray("language")
	headers, _ := f.GetStringArray("header")
	hosts, _ := f.GetStringArray("allow-host")
	concurrency, _ := f.GetInt("concurrency")
	quiet, _ := f.GetBool("quiet")
	verbose, _ := f.GetBool("verbose")
	switch {
	case len(args) != 1:
		return usage("one playlist URL is needed, %d given", len(args))
	case out == "":
		return usage("-o <file> is required")
	case out == "-" && pio.stdoutTTY:
		return usage("refusing to write an MP4 to a terminal: redirect stdout, or give -o <file>")
	case maxHeight < 0:
		return usage("--max-height must not be negative")
	case concurrency < 1:
		return usage("--concurrency must be at least 1")
	}
	for _, l := range languages {
		if checkLanguage(l) != nil {
			return usage("--language %q is not a language tag (such as en, fr, pt-BR)", l)
		}
	}
	if u, err := url.Parse(args[0]); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usage("%q is not an http or https URL", args[0])
	}
	header := make(http.Header)
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") || strings.ContainsAny(value, "\r\n") {
			return usage(`--header %q: want "Name: value"`, h)
		}
		header.Add(name, strings.TrimSpace(value))
	}
	opts := packager.PackageOptions{
		Type:         packager.DefaultType,
		MaxHeight:    maxHeight,
		Languages:    languages,
		Header:       header,
		Concurrency:  concurrency,
		MaxOutput:    defaultMaxOutput,
		AllowedHosts: hosts,
	}
	if audio {
		opts.Type = packager.AudioType
	}

	ctx, cancel := context.WithCancelCause(cmd.Context())
	defer cancel(nil)
	if pio.signals {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sig)
		go func() {
			select {
			case s := <-sig:
				// The run stops and removes its temp file; a second signal kills at once.
				signal.Stop(sig)
				cancel(signalCause{s})
			case <-ctx.Done():
			}
		}()
	}
	view := newProgressView(pio)
	if !quiet {
		opts.Progress = view.update
	}
	if verbose {
		opts.Log = debugLogger(view)
	}

	target := out
	if out == "-" {
		dir, err := os.MkdirTemp("", "stream-downloads-package-")
		if err != nil {
			fmt.Fprintf(pio.stderr, "package: storage_error: %v\n", err)
			return exitFailed
		}
		defer os.RemoveAll(dir)
		target = filepath.Join(dir, "out"+opts.Type.Ext)
	}
	res, err := packager.Package(ctx, args[0], target, opts)
	copying := err == nil && out == "-"
	if copying {
		err = copyToStdout(ctx, pio.stdout, target)
	}
	view.clear()
	if err != nil {
		if ctx.Err() != nil {
			code, what := exitInterrupted, "interrupted"
			if s, ok := context.Cause(ctx).(signalCause); ok && s.Signal == syscall.SIGTERM {
				code, what = exitTerminated, "terminated"
			}
			left := "no file written"
			if copying {
				left = "stdout may hold part of the file"
			}
			fmt.Fprintf(pio.stderr, "package: %s: %s\n", what, left)
			return code
		}
		code, text := packager.Classify(err)
		fmt.Fprintf(pio.stderr, "package: %s: %s\n", code, oneLine(text))
		return exitFailed
	}
	if !quiet {
		where := out
		if out == "-" {
			where = "stdout"
		}
		var what []string
		what = append(what, formatBytes(res.Size))
		if v := res.Variant; v.Height > 0 && !opts.Type.AudioOnly() {
			what = append(what, fmt.Sprintf("%dx%d", v.Width, v.Height))
		}
		what = append(what, res.Duration.Round(time.Second).String()+" of media")
		fmt.Fprintf(pio.stderr, "package: wrote %s (%s) in %s, %s fetched\n", where, strings.Join(what, ", "),
			res.Took.Round(10*time.Millisecond), formatBytes(res.Fetched))
		for _, n := range res.Notes {
			fmt.Fprintf(pio.stderr, "package: note: %s\n", oneLine(n))
		}
	}
	return 0
}

// signalCause is the cause of a run cancelled by a signal.
type signalCause struct{ os.Signal }

func (s signalCause) Error() string { return s.Signal.String() + " received" }

// copyToStdout copies the finished file to w (-o -), stopping when ctx is cancelled.
func copyToStdout(ctx context.Context, w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := f.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return fmt.Errorf("writing to stdout: %w", err)
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// oneLine is s with its line breaks made spaces: a failure is said in one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
