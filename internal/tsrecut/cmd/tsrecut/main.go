// Command tsrecut rewrites one MPEG-TS segment for the conformance streams
// (testdata/conformance/make.sh): re-cut its PES as real packagers do, or damage it.
//
//	tsrecut -pattern fixed|apple|random IN.ts OUT.ts   re-cut the PES (package tsrecut)
//	tsrecut -declare 0x0f:0x102 IN.ts OUT.ts           add a PMT entry (type:PID) that has no packets
//	tsrecut -lose 3 [-pid 0x100] IN.ts OUT.ts          remove 3 packets from the middle of the largest PES
//	tsrecut -keep 0.5 IN.ts OUT.ts                     keep only the PES that begin in the first half
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/stream-downloads/caddy-stream-downloads/internal/tsrecut"
)

func main() {
	pattern := flag.String("pattern", "", "re-cut with this pattern: fixed, apple or random")
	declare := flag.String("declare", "", "TYPE:PID: add a PMT entry for a stream that has no packets")
	lose := flag.Int("lose", 0, "remove this many packets from the middle of the largest PES of -pid")
	pid := flag.String("pid", "", "PID for -lose (default: the first video PID)")
	keep := flag.Float64("keep", 0, "keep only the PES that begin in this fraction (0..1) of the packets")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: tsrecut (-pattern NAME | -declare TYPE:PID | -lose N [-pid PID] | -keep FRACTION) IN.ts OUT.ts")
		flag.PrintDefaults()
	}
	flag.Parse()
	ops := 0
	for _, set := range []bool{*pattern != "", *declare != "", *lose > 0, *keep > 0} {
		if set {
			ops++
		}
	}
	if flag.NArg() != 2 || ops != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), flag.Arg(1), *pattern, *declare, *lose, *pid, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "tsrecut:", err)
		os.Exit(1)
	}
}

func run(inPath, outPath, pattern, declare string, lose int, pidFlag string, keep float64) error {
	in, err := os.ReadFile(inPath)
	if err != nil {
		return err
	}
	var out []byte
	switch {
	case pattern != "":
		p, err := tsrecut.PatternNamed(pattern)
		if err != nil {
			return err
		}
		out, err = tsrecut.Recut(in, p)
		if err != nil {
			return fmt.Errorf("%s: %w", inPath, err)
		}
	case declare != "":
		typ, pid, ok := strings.Cut(declare, ":")
		t, err1 := strconv.ParseUint(typ, 0, 8)
		p, err2 := strconv.ParseUint(pid, 0, 13)
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf("-declare %q: want TYPE:PID, e.g. 0x0f:0x102", declare)
		}
		if out, err = tsrecut.DeclareStream(in, byte(t), uint16(p)); err != nil {
			return fmt.Errorf("%s: %w", inPath, err)
		}
	case lose > 0:
		var p uint64
		if pidFlag != "" {
			if p, err = strconv.ParseUint(pidFlag, 0, 13); err != nil {
				return fmt.Errorf("-pid %q: %w", pidFlag, err)
			}
		} else {
			seg, err := tsrecut.Demux(in)
			if err != nil {
				return fmt.Errorf("%s: %w", inPath, err)
			}
			for _, st := range seg.Streams {
				if st.Video {
					p = uint64(st.PID)
					break
				}
			}
			if p == 0 {
				return fmt.Errorf("%s: no video stream (give -pid)", inPath)
			}
		}
		if out, _, err = tsrecut.Lose(in, uint16(p), lose); err != nil {
			return fmt.Errorf("%s: %w", inPath, err)
		}
	case keep > 0:
		if keep >= 1 {
			return fmt.Errorf("-keep %v: want a fraction below 1", keep)
		}
		if out, err = tsrecut.Truncate(in, keep); err != nil {
			return fmt.Errorf("%s: %w", inPath, err)
		}
	}
	return os.WriteFile(outPath, out, 0o644)
}
