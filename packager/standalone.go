package packager

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/packager/hls"
)

// PackageOptions tune Package. The zero value packages the "default" download as the
// module does with its defaults (no max_height, fetch_concurrency 12, the default limits).
type PackageOptions struct {
	// Type is the download type: DefaultType (the zero value means it) or AudioType.
	Type Type
	// MaxHeight caps the variant chosen for a video type, as max_height; 0: none.
	MaxHeight int
	// Languages keeps the alternative audio and subtitles of these languages only, as
	// the languages option (LanguageKept); nil: all.
	Languages []string
	// Header holds extra headers for every origin request, as origin_header.
	Header http.Header
	// Concurrency is the number of parallel origin requests; 0: hls.DefaultConcurrency.
	Concurrency int
	// Limits bound what the stream may make Package fetch, as limits; zero fields take
	// the defaults.
	Limits hls.Limits
	// MaxOutput bounds the packaged file's size in bytes (limits output_size); 0: none.
	MaxOutput int64
	// AllowedHosts are the hosts besides the playlist's that playlists may point at, as
	// allowed_hosts.
	AllowedHosts []string
	// ResolveTimeout bounds the reading of the playlists; 0: DefaultResolveTimeout.
	ResolveTimeout time.Duration
	// Log receives the origin client's Debug lines (retries, stalls, redirects, their
	// URLs redacted), as a job's logger does in the module; nil: none.
	Log *zap.Logger
	// HTTP is the client of origin requests; nil: a new hls.NewHTTPClient. Its
	// Transport is wrapped to count the bytes fetched.
	HTTP *http.Client
	// Progress, when set, hears how the packaging goes: after each segment, every
	// ProgressInterval in between, and once at the end of a run that succeeded. Calls
	// do not overlap; they must return quickly.
	Progress func(Progress)
	// ProgressInterval is the period of the Progress calls between segments; 0: 100 ms.
	ProgressInterval time.Duration
}

// Progress is how far a Package run is.
type Progress struct {
	// Done and Total are the playlist time of the segments remuxed so far and of all
	// of them (the renditions' EXTINF summed: a separate audio rendition counts too).
	// Total is 0 until the playlists are read.
	Done, Total time.Duration
	// Fetched is the bytes read from the origin so far (bodies of playlists, segments,
	// init sections and keys, retries included).
	Fetched int64
	// Written is the bytes written to the output file so far.
	Written int64
	// Elapsed is the time since Package started.
	Elapsed time.Duration
	// Finished: the file is complete (the last call).
	Finished bool
}

// Fraction is Done/Total in [0, 1]; 0 while Total is unknown.
func (p Progress) Fraction() float64 {
	if p.Total <= 0 {
		return 0
	}
	return min(1, p.Done.Seconds()/p.Total.Seconds())
}

// Result describes the file Package made.
type Result struct {
	// Path is where the file is (Package's out).
	Path string
	// Type is the download type packaged.
	Type Type
	// Size is the file's size in bytes.
	Size int64
	// ETag is the ETag the module gives the same file (from its header and the source's
	// identities: fileETag).
	ETag string
	// Duration is the source's duration by its playlist.
	Duration time.Duration
	// Variant is the variant chosen from a multivariant playlist (zero for a media
	// playlist).
	Variant hls.VariantInfo
	// Notes say what the file lacks or changed without it being an error, as the API's
	// messages.
	Notes []string
	// Fetched is the bytes read from the origin.
	Fetched int64
	// Took is the run's time.
	Took time.Duration
}

// Package packages the HLS stream at playlistURL into the file out, without a Manager or
// a store: the module's packager for one file (the `caddy stream-downloads package`
// command). It takes the code path of the Manager's jobs (resolve, renditions, packInto),
// so the file has the same bytes as the module's download of the same source and type
// with the same options.
//
// The file is written to a temp file in out's directory and renamed to out when it is
// complete: an error, or ctx cancelled, leaves no file at out (an existing one stays as
// it was). A run that succeeds replaces an existing out. Errors are classified by
// Classify as the module's runs are.
func Package(ctx context.Context, playlistURL, out string, o PackageOptions) (Result, error) {
	start := time.Now()
	typ := o.Type
	if typ == (Type{}) {
		typ = DefaultType
	}
	res := Result{Path: out, Type: typ}
	if o.ResolveTimeout <= 0 {
		o.ResolveTimeout = DefaultResolveTimeout
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = 100 * time.Millisecond
	}

	var fetched, written atomic.Int64
	base := o.HTTP
	if base == nil {
		base = hls.NewHTTPClient()
		defer base.CloseIdleConnections()
	}
	hc := *base
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	hc.Transport = countingTransport{rt, &fetched}
	client := &hls.Client{HTTP: &hc, Header: o.Header, Limits: o.Limits, AllowedHosts: o.AllowedHosts, Log: o.Log}

	// Progress: one goroutine calls it, so calls never overlap.
	var pmu sync.Mutex
	var done, total time.Duration
	var ended bool // the last call was made: a tick after it says nothing
	report := func(finished bool) {
		if o.Progress == nil {
			return
		}
		pmu.Lock()
		defer pmu.Unlock()
		if ended {
			return
		}
		ended = finished
		o.Progress(Progress{Done: done, Total: total, Fetched: fetched.Load(), Written: written.Load(),
			Elapsed: time.Since(start), Finished: finished})
	}
	if o.Progress != nil {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(o.ProgressInterval)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					report(false)
				}
			}
		}()
		defer wg.Wait()
		defer close(stop)
	}
	setProgress := func(d, t time.Duration) {
		pmu.Lock()
		done, total = d, t
		pmu.Unlock()
	}

	src, err := resolve(ctx, client, playlistURL, hls.SelectOptions{MaxHeight: o.MaxHeight}, o.ResolveTimeout)
	src = keepLanguages(src, o.Languages)
	if err != nil {
		return res, err
	}
	res.Duration, res.Variant = src.Duration, src.Variant
	rs, err := renditions(src, typ)
	if err != nil {
		return res, err
	}
	var sum time.Duration
	for _, r := range rs {
		for _, s := range r.segs {
			sum += s.Duration
		}
	}
	setProgress(0, sum)
	report(false)

	dir, name := filepath.Split(out)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+name+".*.part")
	if err != nil {
		return res, storageError{"creating the output file in " + dir, err}
	}
	tmp := f.Name()
	committed := false
	defer func() {
		if !committed {
			f.Close()
			os.Remove(tmp)
		}
	}()

	pk, err := packInto(ctx, client, src, typ, rs, o.Concurrency, o.MaxOutput, countingFile{f, &written},
		func(d, t time.Duration) {
			setProgress(d, t)
			report(false)
		})
	if err == nil {
		err = ctx.Err() // the last segment may have been remuxed as the run was cancelled
	}
	if err != nil {
		return res, err
	}
	if err := f.Sync(); err != nil {
		return res, storageError{"writing " + out, err}
	}
	if err := f.Close(); err != nil {
		return res, storageError{"writing " + out, err}
	}
	// CreateTemp makes the file 0600; the output is meant to be read as any other file.
	if err := os.Chmod(tmp, 0o644); err != nil {
		return res, storageError{"writing " + out, err}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if err := os.Rename(tmp, out); err != nil {
		return res, storageError{"renaming the output file to " + out, err}
	}
	committed = true
	if d, err := os.Open(dir); err == nil { // the rename durable too, best effort
		d.Sync()
		d.Close()
	}

	res.Size = pk.info.Size
	res.ETag = pk.etag
	res.Notes = pk.notes
	res.Fetched = fetched.Load()
	res.Took = time.Since(start)
	written.Store(pk.info.Size)
	setProgress(sum, sum)
	report(true)
	return res, nil
}

// Classify returns the errorReasonCode and errorReasonText the module's API would show
// for a packaging run that failed with err ("not_found", "live", "origin_error",
// "storage_error", …; see docs/spec.md). A cancelled run is "canceled".
func Classify(err error) (code, text string) {
	if errors.Is(err, context.Canceled) {
		return "canceled", "the packaging was cancelled"
	}
	return classify(err)
}

// countingTransport counts the bytes of the response bodies read through it.
type countingTransport struct {
	rt http.RoundTripper
	n  *atomic.Int64
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(req)
	if resp != nil && resp.Body != nil {
		resp.Body = countingBody{resp.Body, t.n}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// countingFile is the output file counting the bytes written to it. It is a
// syscall.Conn as the *os.File is, so that the writer starts the write-back as it
// goes (mp4.File).
type countingFile struct {
	*os.File
	n *atomic.Int64
}

func (f countingFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	f.n.Add(int64(n))
	return n, err
}

var _ syscall.Conn = countingFile{}
