package streamdownloads

// How `caddy stream-downloads package` shows its progress: a bar on a terminal, plain
// lines elsewhere (docs/cli.md).

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/packager"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// progressView shows a Package run's progress on stderr: a bar redrawn in place at most
// ten times a second on a terminal, else a plain line at each 10 % and every 5 s.
type progressView struct {
	mu       sync.Mutex // update and Write come from different goroutines
	pio      *packageIO
	last     time.Time // when a line was last drawn or printed
	lastStep int       // plain lines: the last 10 % step printed
	drawn    bool      // a bar is on the terminal's line
	rate     rateMeter
}

// Redraw and plain-line periods.
const (
	barPeriod   = 100 * time.Millisecond
	plainPeriod = 5 * time.Second
)

func newProgressView(pio *packageIO) *progressView {
	if pio.now == nil {
		pio.now = time.Now
	}
	return &progressView{pio: pio, lastStep: -1}
}

// update takes Package's progress (its calls do not overlap).
func (v *progressView) update(p packager.Progress) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.pio.now()
	v.rate.add(now, p.Fetched)
	if p.Finished {
		return // the summary line says it
	}
	if v.pio.tty {
		if !v.last.IsZero() && now.Sub(v.last) < barPeriod {
			return
		}
		v.last = now
		width := 80
		if v.pio.width != nil {
			if w := v.pio.width(); w > 0 {
				width = w
			}
		}
		line := barLine(p, v.rate.perSecond(), width)
		fmt.Fprint(v.pio.stderr, "\r"+line+"\x1b[K")
		v.drawn = true
		return
	}
	if p.Total == 0 {
		return
	}
	step := int(p.Fraction() * 10)
	if step == v.lastStep && now.Sub(v.last) < plainPeriod {
		return
	}
	v.lastStep, v.last = step, now
	fmt.Fprintf(v.pio.stderr, "package: %3.0f%% of %s, %s fetched, %s written, %s/s, ETA %s\n",
		100*p.Fraction(), p.Total.Round(time.Second), formatBytes(p.Fetched), formatBytes(p.Written),
		formatBytes(int64(v.rate.perSecond())), eta(p))
}

// clear erases the bar, so that what follows starts a clean line.
func (v *progressView) clear() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.erase()
}

func (v *progressView) erase() {
	if v.drawn {
		fmt.Fprint(v.pio.stderr, "\r\x1b[K")
		v.drawn = false
	}
}

// Write writes log lines to stderr, erasing the bar first (the next update draws it
// again below them).
func (v *progressView) Write(p []byte) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.erase()
	if v.pio.tty {
		v.last = time.Time{} // the bar comes back at the next update
	}
	return v.pio.stderr.Write(p)
}

// debugLogger is --verbose's logger: the origin client's Debug lines, as text, through w.
func debugLogger(w io.Writer) *zap.Logger {
	cfg := zap.NewDevelopmentEncoderConfig()
	cfg.TimeKey = ""
	return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(cfg), zapcore.AddSync(w), zap.DebugLevel))
}

// barLine is the terminal's progress line, at most width-1 columns:
// " 42% [=========>            ] 12.3 MB  2.1 MB/s  ETA 0:07".
func barLine(p packager.Progress, rate float64, width int) string {
	if p.Total == 0 {
		return fitWidth("reading the playlists… "+formatBytes(p.Fetched), width-1)
	}
	f := p.Fraction()
	tail := fmt.Sprintf(" %s  %s/s  ETA %s", formatBytes(p.Fetched), formatBytes(int64(rate)), eta(p))
	head := fmt.Sprintf("%3.0f%% ", 100*f)
	n := min(50, width-1-len(head)-len(tail)-2)
	if n < 10 {
		return fitWidth(head+strings.TrimSpace(tail), width-1)
	}
	full := int(f * float64(n))
	bar := strings.Repeat("=", full)
	if full < n {
		bar += ">" + strings.Repeat(" ", n-full-1)
	}
	return head + "[" + bar + "]" + tail
}

// fitWidth cuts s to n runes.
func fitWidth(s string, n int) string {
	r := []rune(s)
	if n > 0 && len(r) > n {
		return string(r[:n])
	}
	return s
}

// eta is the time left at the pace so far (playlist time done per second), as "1:02:03"
// or "0:07"; "--:--" until there is a pace.
func eta(p packager.Progress) string {
	f := p.Fraction()
	if f <= 0 || p.Elapsed <= 0 {
		return "--:--"
	}
	left := time.Duration(float64(p.Elapsed) * (1 - f) / f).Round(time.Second)
	h, m, s := int(left.Hours()), int(left.Minutes())%60, int(left.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}

// formatBytes is n in SI units: "950 B", "12.3 MB".
func formatBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTP"[exp])
}

// rateMeter is the rate of a growing count over the last few seconds.
type rateMeter struct {
	t []time.Time
	n []int64
}

const rateWindow = 3 * time.Second

func (r *rateMeter) add(t time.Time, n int64) {
	r.t, r.n = append(r.t, t), append(r.n, n)
	i := 0
	for i < len(r.t)-2 && t.Sub(r.t[i+1]) >= rateWindow {
		i++
	}
	r.t, r.n = r.t[i:], r.n[i:]
}

// perSecond is the count's growth per second over the window; 0 before two samples.
func (r *rateMeter) perSecond() float64 {
	if len(r.t) < 2 {
		return 0
	}
	d := r.t[len(r.t)-1].Sub(r.t[0]).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(r.n[len(r.n)-1]-r.n[0]) / d
}
