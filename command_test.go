package streamdownloads

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
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

// cliRun is one run of the package command in this process.
type cliRun struct {
	code           int
	stdout, stderr string
}

// runPackageCLI runs `package args…` in-process, its stderr not a terminal unless tty.
func runPackageCLI(t *testing.T, ctx context.Context, tty bool, args ...string) cliRun {
	t.Helper()
	var stdout, stderr bytes.Buffer
	r := cliRun{code: -1}
	pio := &packageIO{stdout: &stdout, stderr: &stderr, tty: tty, exit: func(c int) { r.code = c }}
	cmd := newPackageCommand(pio)
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	err := cmd.ExecuteContext(ctx)
	if r.code == -1 {
		if err != nil {
			t.Fatalf("package %q: %v, and no exit status", args, err)
		}
		r.code = 0
	}
	r.stdout, r.stderr = stdout.String(), stderr.String()
	return r
}

// moduleFile packages the video at url as the module does (a Manager over a local
// store, with max_height) and returns the file's bytes.
func moduleFile(t *testing.T, url string, typ packager.Type, maxHeight int) []byte {
	t.Helper()
	store, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := packager.NewManager(store, packager.Settings{MaxJobs: 1, MaxHeight: maxHeight}, zap.NewNop())
	defer m.Destruct()
	k := storage.Key{Video: "demo", Type: typ.Name}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := m.Create(ctx, k, url); err != nil {
		t.Fatal(err)
	}
	if st, ok := m.Wait(ctx, k); !ok || st.Status != packager.StatusReady {
		t.Fatalf("the module's %s download: %+v", typ.Name, st)
	}
	f, _, err := m.Open(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ftypBrand is the major brand of an MP4's ftyp box.
func ftypBrand(b []byte) string {
	if len(b) < 12 || string(b[4:8]) != "ftyp" {
		return ""
	}
	return string(b[8:12])
}

// TestPackageCLI: the package command writes the module's bytes for the demo — the
// MP4, the M4A with --audio, the lower variant with --max-height, to a file and to
// stdout — with plain progress lines and a summary on stderr when it is not a terminal.
func TestPackageCLI(t *testing.T) {
	o := testutil.NewOrigin(t, testutil.DemoOrigin(t))
	url := o.URL + "/demo/master.m3u8"
	for _, c := range []struct {
		name      string
		args      []string
		typ       packager.Type
		maxHeight int
		brand     string
		summary   string
	}{
		{"default", nil, packager.DefaultType, 0, "isom", "426x240, 12s of media"},
		{"audio", []string{"--audio"}, packager.AudioType, 0, "M4A ", "12s of media"},
		{"max-height", []string{"--max-height", "200"}, packager.DefaultType, 200, "isom", "256x144, 12s of media"},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := moduleFile(t, url, c.typ, c.maxHeight)
			out := filepath.Join(t.TempDir(), "out"+c.typ.Ext)
			r := runPackageCLI(t, context.Background(), false, append(c.args, url, "-o", out)...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("the command wrote %d bytes, the module %d: they differ", len(got), len(want))
			}
			if b := ftypBrand(got); b != c.brand {
				t.Errorf("major brand %q, want %q", b, c.brand)
			}
			if r.stdout != "" {
				t.Errorf("stdout: %q", r.stdout)
			}
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			if len(lines) < 3 || !strings.HasPrefix(lines[0], "package:   0% of 12s") ||
				!regexp.MustCompile(`^package: 100% of 12s, [0-9.]+ [kM]B fetched, [0-9.]+ [kM]?B written, [0-9.]+ [kM]?B/s, ETA 0:00$`).MatchString(lines[len(lines)-2]) ||
				!strings.HasPrefix(lines[len(lines)-1], "package: wrote "+out+" (") || !strings.Contains(lines[len(lines)-1], c.summary) {
				t.Errorf("stderr:\n%s", r.stderr)
			}
			if strings.Contains(r.stderr, "\r") || strings.Contains(r.stderr, "\x1b") {
				t.Errorf("terminal controls on a stderr that is no terminal: %q", r.stderr)
			}

			// To stdout, quiet.
			r = runPackageCLI(t, context.Background(), false, append(c.args, "-q", url, "-o", "-")...)
			if r.code != 0 || r.stderr != "" || r.stdout != string(want) {
				t.Errorf("-o - -q: exit %d, stderr %q, %d bytes on stdout (want %d)", r.code, r.stderr, len(r.stdout), len(want))
			}
		})
	}
}

// TestPackageCLIHeader: --header reaches every origin request (an origin that refuses
// requests without it), and without it the command fails with the origin's status.
func TestPackageCLIHeader(t *testing.T) {
	o := testutil.NewOrigin(t, testutil.DemoOrigin(t))
	files := o.Config.Handler
	var mu sync.Mutex
	seen := 0
	o.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Origin-Token") != "s3cret" || r.Header.Get("X-Other") != "a b" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		mu.Lock()
		seen++
		mu.Unlock()
		files.ServeHTTP(w, r)
	})
	url := o.URL + "/demo/master.m3u8"
	dir := t.TempDir()
	out := filepath.Join(dir, "out.mp4")
	r := runPackageCLI(t, context.Background(), false, url, "-o", out, "--header", "X-Other: a b")
	if r.code != 1 || !regexp.MustCompile(`^package: origin_error: .*403.*\n$`).MatchString(r.stderr) {
		t.Errorf("without the header: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runPackageCLI(t, context.Background(), false, "--header", "X-Origin-Token:s3cret", "--header", "X-Other: a b", url, "-o", out)
	if r.code != 0 {
		t.Fatalf("with the header: exit %d: %s", r.code, r.stderr)
	}
	if b := ftypBrand(mustRead(t, out)); b != "isom" {
		t.Errorf("the file's brand: %q", b)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen != 1+1+3 { // master, 240p playlist, 3 segments
		t.Errorf("%d requests with the header reached the files", seen)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPackageCLIFailures: exit status 1 and one line "package: <code>: <reason>" for an
// origin without the video and a live playlist; 2 and one line for bad usage; no file
// either way.
func TestPackageCLIFailures(t *testing.T) {
	src := t.TempDir()
	if err := os.CopyFS(filepath.Join(src, "live"), os.DirFS(filepath.Join(testutil.DemoOrigin(t), "demo"))); err != nil {
		t.Fatal(err)
	}
	pl := filepath.Join(src, "live", "240p", "index.m3u8")
	b := mustRead(t, pl)
	b = bytes.Replace(bytes.Replace(b, []byte("#EXT-X-ENDLIST"), nil, 1), []byte("#EXT-X-PLAYLIST-TYPE:VOD"), nil, 1)
	if err := os.WriteFile(pl, b, 0o644); err != nil {
		t.Fatal(err)
	}
	o := testutil.NewOrigin(t, src)
	for _, c := range []struct {
		name string
		args []string
		code int
		line string // a regexp of the one line on stderr
	}{
		{"404", []string{o.URL + "/nothing/master.m3u8"}, 1, `^package: not_found: .+$`},
		{"live", []string{o.URL + "/live/master.m3u8"}, 1, `^package: live: .+$`},
		{"no -o", []string{"-q", o.URL + "/live/master.m3u8"}, 2, `^package: -o <file> is required \(see --help\)$`},
		{"bad header", []string{"--header", "NoColon", o.URL + "/x.m3u8"}, 2, `^package: --header "NoColon": want "Name: value" \(see --help\)$`},
		{"not a URL", []string{"ftp://x/y.m3u8"}, 2, `^package: "ftp://x/y.m3u8" is not an http or https URL \(see --help\)$`},
		{"two URLs", []string{"http://a/1.m3u8", "http://a/2.m3u8"}, 2, `^package: one playlist URL is needed, 2 given \(see --help\)$`},
		{"unknown flag", []string{"--bogus", "http://a/1.m3u8"}, 2, `^package: unknown flag: --bogus \(see --help\)$`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			args := c.args
			if c.name != "no -o" {
				args = append(args, "-o", filepath.Join(dir, "out.mp4"))
			}
			r := runPackageCLI(t, context.Background(), false, args...)
			line := strings.TrimSuffix(r.stderr, "\n")
			if r.code != c.code || strings.Contains(line, "\n") || !regexp.MustCompile(c.line).MatchString(line) {
				t.Errorf("exit %d (want %d), stderr %q", r.code, c.code, r.stderr)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("%d files left", len(ents))
			}
		})
	}
}

// TestPackageCLICancel: a run cancelled while a segment is held at the origin exits 130
// and leaves no file, not even the temp one, and keeps a file that was at -o before.
func TestPackageCLICancel(t *testing.T) {
	o := testutil.NewOrigin(t, testutil.DemoOrigin(t))
	dir := t.TempDir()
	out := filepath.Join(dir, "out.mp4")
	if err := os.WriteFile(out, []byte("before"), 0o644); err != nil {
		t.Fatal(err)
	}
	o.HoldSegmentsAfter(1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan cliRun, 1)
	go func() { done <- runPackageCLI(t, ctx, false, o.URL+"/demo/master.m3u8", "-o", out) }()
	select {
	case <-o.Held:
	case <-time.After(time.Minute):
		t.Fatal("no segment request was held")
	}
	cancel()
	r := <-done
	if r.code != exitInterrupted || !strings.HasSuffix(r.stderr, "package: interrupted: no file written\n") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%d entries left in the directory, want the file that was there", len(ents))
	}
	if b := mustRead(t, out); string(b) != "before" {
		t.Errorf("the file at -o changed: %q", b)
	}
}

// TestProgressViewTTY: on a terminal the bar is redrawn in place (carriage return, erase
// to the end of the line) at most ten times a second, with percent, bytes, rate and ETA,
// within the terminal's width, and erased before the summary.
func TestProgressViewTTY(t *testing.T) {
	var buf bytes.Buffer
	clock := time.Unix(1000, 0)
	pio := &packageIO{stderr: &buf, tty: true, width: func() int { return 72 }, now: func() time.Time { return clock }}
	v := newProgressView(pio)
	total := 100 * time.Second
	for i := 0; i <= 50; i++ { // every 20 ms for a second: 11 draws at most
		v.update(packager.Progress{Done: time.Duration(i) * time.Second, Total: total, Fetched: int64(i) * 200_000,
			Elapsed: time.Duration(i) * 20 * time.Millisecond})
		clock = clock.Add(20 * time.Millisecond)
	}
	v.clear()
	draws := strings.Split(buf.String(), "\r")[1:]
	if n := len(draws); n < 9 || n > 12 {
		t.Errorf("%d redraws in a second", n)
	}
	re := regexp.MustCompile(`^ *\d+% \[=*>? *\] [0-9.]+ [kM]?B  [0-9.]+ [kM]?B/s  ETA (\d+:\d\d|--:--)\x1b\[K$`)
	for _, d := range draws[:len(draws)-1] {
		if !re.MatchString(d) || len(d)-len("\x1b[K") > 71 {
			t.Errorf("bar %q", d)
		}
	}
	if last := draws[len(draws)-2]; !strings.HasPrefix(last, " 50% [") || !strings.Contains(last, "10.0 MB/s") || !strings.Contains(last, "ETA 0:01") {
		t.Errorf("last bar %q: want 50%%, 10.0 MB/s (200 kB per 20 ms), ETA 0:01", last)
	}
	if draws[len(draws)-1] != "\x1b[K" {
		t.Errorf("the bar is not erased at the end: %q", draws[len(draws)-1])
	}
	// A narrow terminal: no bar, still the figures, within the width.
	if l := barLine(packager.Progress{Done: 1, Total: 2, Fetched: 5e6, Elapsed: time.Second}, 1e6, 30); len(l) > 29 || !strings.HasPrefix(l, " 50% 5.0 MB") {
		t.Errorf("narrow: %q", l)
	}
}

// TestPackageBinary runs the built Caddy's `stream-downloads package`: the progress bar
// on a pseudo-terminal, exit status 130 and no file after SIGINT, 143 after SIGTERM,
// and 1 with one line for a missing video.
func TestPackageBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Caddy: runs without -short")
	}
	bin := filepath.Join(t.TempDir(), "caddy")
	build := exec.Command("go", "build", "-o", bin, "./cmd/caddy")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/caddy: %v\n%s", err, out)
	}
	// Each subtest has its own origin: segments still held from one would be in Held.
	t.Run("pty", func(t *testing.T) {
		o := testutil.NewOrigin(t, testutil.DemoOrigin(t))
		url := o.URL + "/demo/master.m3u8"
		out := filepath.Join(t.TempDir(), "out.mp4")
		cmd := exec.Command(bin, "stream-downloads", "package", "--concurrency", "1", url, "-o", out) // seg_000 first
		ptmx, tty, err := pty.Open()
		if err != nil {
			t.Skipf("no pseudo-terminal: %v", err)
		}
		defer ptmx.Close()
		if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: 100}); err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = tty
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		o.HoldSegmentsAfter(1) // the bar is drawn while a segment waits
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		tty.Close()
		var screen bytes.Buffer
		read := make(chan struct{})
		go func() { io.Copy(&screen, ptmx); close(read) }() // ends with EIO when the process exits
		select {
		case <-o.Held:
		case <-time.After(time.Minute):
			t.Fatal("no segment request was held")
		}
		time.Sleep(400 * time.Millisecond)
		o.Release()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%v: %q", err, screen.String())
		}
		<-read
		s := screen.String()
		if !regexp.MustCompile(`\r 33% \[=+>? *\] [0-9.]+ [kM]B  [0-9.]+ [kM]?B/s  ETA \d+:\d\d\x1b\[K\r`).MatchString(s) ||
			!regexp.MustCompile(`\r\x1b\[Kpackage: wrote .*out\.mp4 \(.*426x240, 12s of media\) in .*\r?\n$`).MatchString(s) {
			t.Errorf("the terminal shows %q", s)
		}
		if want := moduleFile(t, url, packager.DefaultType, 0); !bytes.Equal(mustRead(t, out), want) || stdout.Len() != 0 {
			t.Errorf("the file differs from the module's, or stdout got %d bytes", stdout.Len())
		}
	})

	for _, c := range []struct {
		sig  syscall.Signal
		code int
		line string
	}{
		{syscall.SIGINT, 130, "package: interrupted: no file written\n"},
		{syscall.SIGTERM, 143, "package: terminated: no file written\n"},
	} {
		t.Run(c.sig.String(), func(t *testing.T) {
			o := testutil.NewOrigin(t, testutil.DemoOrigin(t))
			url := o.URL + "/demo/master.m3u8"
			dir := t.TempDir()
			cmd := exec.Command(bin, "stream-downloads", "package", "-q", url, "-o", filepath.Join(dir, "out.mp4"))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			o.HoldSegmentsAfter(1)
			defer o.Release()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-o.Held:
			case <-time.After(time.Minute):
				t.Fatal("no segment request was held")
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("while packaging: %d entries, want the temp file", len(ents))
			}
			cmd.Process.Signal(c.sig)
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != c.code || stderr.String() != c.line {
				t.Errorf("after %v: %v, stderr %q", c.sig, err, stderr.String())
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("%d files left", len(ents))
			}
		})
	}

	t.Run("404", func(t *testing.T) {
		o := testutil.NewOrigin(t, testutil.DemoOrigin(t))
		dir := t.TempDir()
		cmd := exec.Command(bin, "stream-downloads", "package", o.URL+"/none/master.m3u8", "-o", filepath.Join(dir, "out.mp4"))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !regexp.MustCompile(`^package: not_found: [^\n]+\n$`).MatchString(stderr.String()) {
			t.Errorf("%v, stderr %q", err, stderr.String())
		}
	})
}

// TestPackageCLIVerbose: -v logs the origin client's retries on stderr, between the
// progress lines, and the file is whole.
func TestPackageCLIVerbose(t *testing.T) {
	o := testutil.NewOrigin(t, testutil.DemoOrigin(t))
	files := o.Config.Handler
	var once sync.Once
	o.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		failed := false
		if strings.HasSuffix(r.URL.Path, "/seg_001.ts") {
			once.Do(func() { failed = true })
		}
		if failed {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		files.ServeHTTP(w, r)
	})
	url := o.URL + "/demo/master.m3u8"
	out := filepath.Join(t.TempDir(), "out.mp4")
	r := runPackageCLI(t, context.Background(), false, "-v", url, "-o", out)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !regexp.MustCompile(`(?m)^DEBUG\tretrying origin request\t.*seg_001\.ts.*503`).MatchString(r.stderr) {
		t.Errorf("no retry logged:\n%s", r.stderr)
	}
	if !bytes.Equal(mustRead(t, out), moduleFile(t, url, packager.DefaultType, 0)) {
		t.Error("the file differs from the module's")
	}
}
