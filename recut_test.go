package streamdownloads_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// TestRecutSameMP4: a stream whose PES are cut anywhere (the recut-* conformance flavours,
// made by internal/tsrecut from the segments of ts-h264-aac/hi and ts-hevc-aac) holds the
// same elementary streams with the same timestamps as the aligned segments it was made
// from, so the module must make the very same MP4 and M4A of it, byte for byte.
// (ts-h264-aac is a master playlist whose default picks hi/, the variant the recut-*-h264
// segments come from.)
func TestRecutSameMP4(t *testing.T) {
	streams := filepath.Join(conformanceDir(t), "streams")
	origin := testutil.NewOrigin(t, streams)
	e := startEdge(t, origin.URL+"/{video_id}/play.m3u8", "")
	pairs := []struct{ aligned, recut string }{
		{"ts-h264-aac", "recut-fixed-h264"},
		{"ts-h264-aac", "recut-apple-h264"},
		{"ts-h264-aac", "recut-random-h264"},
		{"ts-hevc-aac", "recut-apple-hevc"},
	}
	types := []string{"default", "audio"}
	posted := map[string]bool{}
	for _, p := range pairs {
		for _, v := range []string{p.aligned, p.recut} {
			for _, typ := range types {
				if posted[v+"/"+typ] {
					continue
				}
				posted[v+"/"+typ] = true
				if code, env := e.call("POST", "/acct/stream/"+v+"/downloads/"+typ); code != http.StatusOK {
					t.Fatalf("POST %s/%s: %d %+v", v, typ, code, env.Errors)
				}
			}
		}
	}

	type file struct {
		data []byte
		etag string
		err  string // why there is no file
	}
	files := map[string]file{}
	get := func(t *testing.T, video, typ string) file {
		if f, ok := files[video+"/"+typ]; ok {
			return f
		}
		se := *e
		se.t = t
		var f file
		if en := se.waitReady(video, typ); en.Status != "ready" {
			f.err = fmt.Sprintf("%s/%s ended %s: %s: %s", video, typ, en.Status, en.ErrorReasonCode, en.ErrorReasonText)
		} else {
			path, resp := se.download(en.URL)
			if resp.StatusCode != http.StatusOK {
				f.err = fmt.Sprintf("GET %s: %d", en.URL, resp.StatusCode)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f.data, f.etag = data, resp.Header.Get("ETag")
		}
		files[video+"/"+typ] = f
		return f
	}
	for _, p := range pairs {
		for _, typ := range types {
			t.Run(p.recut+"/"+typ, func(t *testing.T) {
				want, got := get(t, p.aligned, typ), get(t, p.recut, typ)
				if want.err != "" {
					t.Fatalf("the aligned source: %s", want.err)
				}
				if got.err != "" {
					t.Fatal(got.err)
				}
				if !bytes.Equal(got.data, want.data) {
					diff := boxDiff(got.data, want.data)
					layoutOnly := true
					for _, d := range diff {
						layoutOnly = layoutOnly && regexp.MustCompile(`/(stsc|stco|co64) |^mdat `).MatchString(d)
					}
					samples := "the same sample data"
					if !slices.Equal(sampleSums(t, got.data), sampleSums(t, want.data)) {
						samples, layoutOnly = "other sample data", false
					}
					why := "the samples or their timing differ"
					if layoutOnly {
						why = "same samples, timing and descriptions: only the chunk layout differs (the writer's interleaving follows the order the demuxer hands samples out, which follows how the segments interleave their PES)"
					}
					t.Errorf("%s/%s: %d bytes (sha256 %x), from %s %d bytes (sha256 %x): %s; boxes that differ: %s; %s",
						p.recut, typ, len(got.data), sha256.Sum256(got.data), p.aligned, len(want.data), sha256.Sum256(want.data),
						why, strings.Join(diff, ", "), samples)
				}
				t.Logf("%d bytes; ETag %s, from %s %s", len(got.data), got.etag, p.aligned, want.etag)
			})
		}
	}
}

// sampleSums returns, for each track of an MP4 file, the SHA-256 of its samples (each one's
// size and bytes, in order), read through stsz, stsc and stco/co64.
func sampleSums(t *testing.T, file []byte) []string {
	t.Helper()
	type tables struct{ stsz, stsc, stco []byte }
	var traks []*tables
	byTrak := map[string]*tables{}
	for _, b := range leafBoxes(file, "") {
		i := strings.Index(b.path, "/mdia/")
		if i < 0 || len(b.data) < 16 {
			continue
		}
		tb := byTrak[b.path[:i]]
		if tb == nil {
			tb = &tables{}
			byTrak[b.path[:i]] = tb
			traks = append(traks, tb)
		}
		switch body := b.data[8:]; b.path[len(b.path)-4:] {
		case "stsz":
			tb.stsz = body
		case "stsc":
			tb.stsc = body
		case "stco", "co64":
			tb.stco = append([]byte{b.path[len(b.path)-1]}, body...) // 'o' or '4'
		}
	}
	u32 := func(b []byte, i int) int { return int(binary.BigEndian.Uint32(b[i:])) }
	var sums []string
	for _, tb := range traks {
		if tb.stsz == nil || tb.stsc == nil || tb.stco == nil {
			t.Fatalf("a track without stsz, stsc or stco")
		}
		var sizes []int
		for i, n := 0, u32(tb.stsz, 8); i < n; i++ {
			if fixed := u32(tb.stsz, 4); fixed != 0 {
				sizes = append(sizes, fixed)
			} else {
				sizes = append(sizes, u32(tb.stsz, 12+4*i))
			}
		}
		var offsets []int
		wide, body := tb.stco[0] == '4', tb.stco[1:]
		for i, n := 0, u32(body, 4); i < n; i++ {
			if wide {
				offsets = append(offsets, int(binary.BigEndian.Uint64(body[8+8*i:])))
			} else {
				offsets = append(offsets, u32(body, 8+4*i))
			}
		}
		h := sha256.New()
		sample := 0
		entries := u32(tb.stsc, 4)
		for e := 0; e < entries; e++ {
			first, per := u32(tb.stsc, 8+12*e), u32(tb.stsc, 12+12*e)
			last := len(offsets) + 1
			if e+1 < entries {
				last = u32(tb.stsc, 8+12*(e+1))
			}
			for c := first; c < last; c++ {
				off := offsets[c-1]
				for k := 0; k < per && sample < len(sizes); k++ {
					fmt.Fprintf(h, "%d:", sizes[sample])
					h.Write(file[off : off+sizes[sample]])
					off += sizes[sample]
					sample++
				}
			}
		}
		sums = append(sums, fmt.Sprintf("%d samples %x", sample, h.Sum(nil)))
	}
	return sums
}

// boxDiff lists the MP4 boxes (leaves of the box tree: stts, stsc, mdat, …) whose bytes
// differ between two files, e.g. "moov/trak[0]/mdia/minf/stbl/stsc".
func boxDiff(a, b []byte) []string {
	la, lb := leafBoxes(a, ""), leafBoxes(b, "")
	var diff []string
	for i := 0; i < max(len(la), len(lb)); i++ {
		switch {
		case i >= len(la):
			diff = append(diff, "only in the second: "+lb[i].path)
		case i >= len(lb):
			diff = append(diff, "only in the first: "+la[i].path)
		case la[i].path != lb[i].path:
			diff = append(diff, la[i].path+" vs "+lb[i].path)
		case !bytes.Equal(la[i].data, lb[i].data):
			diff = append(diff, fmt.Sprintf("%s (%d vs %d bytes)", la[i].path, len(la[i].data), len(lb[i].data)))
		}
	}
	return diff
}

type leafBox struct {
	path string
	data []byte
}

func leafBoxes(b []byte, path string) []leafBox {
	containers := map[string]bool{"moov": true, "trak": true, "mdia": true, "minf": true, "stbl": true, "edts": true, "dinf": true, "udta": true}
	var out []leafBox
	count := map[string]int{}
	for off := 0; off+8 <= len(b); {
		size := int(binary.BigEndian.Uint32(b[off:]))
		typ := string(b[off+4 : off+8])
		hdr := 8
		if size == 1 && off+16 <= len(b) {
			size, hdr = int(binary.BigEndian.Uint64(b[off+8:])), 16
		} else if size == 0 {
			size = len(b) - off
		}
		if size < hdr || off+size > len(b) {
			return append(out, leafBox{path + "/?", b[off:]})
		}
		name := path + "/" + typ
		if typ == "trak" {
			name = fmt.Sprintf("%s/trak[%d]", path, count[typ])
		}
		count[typ]++
		if containers[typ] {
			out = append(out, leafBoxes(b[off+hdr:off+size], name)...)
		} else {
			out = append(out, leafBox{strings.TrimPrefix(name, "/"), b[off : off+size]})
		}
		off += size
	}
	return out
}
