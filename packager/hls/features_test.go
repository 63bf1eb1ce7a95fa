package hls

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestFFmpegStreams fetches the streams ffmpeg made and compares the bodies
// handed over with the clear segment files of the same ffmpeg run.
func TestFFmpegStreams(t *testing.T) {
	t.Parallel()
	o, dir := ffOrigin(t)
	clearSegs := clearSegments(t, dir)
	var singleRanges []string
	off := 0
	for i := range clearSegs {
		singleRanges = append(singleRanges, fmt.Sprintf("bytes=%d-%d", off, off+len(clearSegs[i])-1))
		off += len(clearSegs[i])
	}
	if single := readFF(t, dir, "single.ts"); len(single) != off {
		t.Fatalf("single.ts is %d bytes, the segments %d", len(single), off)
	}
	fmp4 := make([][]byte, 4)
	for i := range fmp4 {
		fmp4[i] = readFF(t, dir, fmt.Sprintf("f%d.m4s", i))
	}
	initMP4 := readFF(t, dir, "init.mp4")

	tests := []struct {
		name     string
		playlist string
		want     func() [][]byte
		key      bool   // one AES-128 key, fetched once
		mapPath  string // path of the init section; "" for TS
		mapRange string // its Range header, if any
		ranged   string // path fetched with Range requests
		ranges   []string
	}{
		{name: "TS", playlist: "clear.m3u8", want: func() [][]byte { return clearSegs }},
		{name: "TS single_file byte ranges", playlist: "single.m3u8", want: func() [][]byte { return clearSegs },
			ranged: "/ff/single.ts", ranges: singleRanges},
		{name: "AES-128 with IV", playlist: "enc.m3u8", want: func() [][]byte { return clearSegs }, key: true},
		{name: "AES-128, IV ffmpeg chose", playlist: "encnoiv.m3u8", want: func() [][]byte { return clearSegs }, key: true},
		{name: "fMP4", playlist: "fmp4.m3u8", want: func() [][]byte { return fmp4 }, mapPath: "/ff/init.mp4"},
		{name: "fMP4 single_file", playlist: "fs.m3u8", mapPath: "/ff/fs.mp4", mapRange: fmt.Sprintf("bytes=0-%d", len(initMP4)-1),
			ranged: "/ff/fs.mp4",
			want: func() [][]byte {
				// The single file holds the segments without their styp.
				fs := readFF(t, dir, "fs.mp4")
				var out [][]byte
				at := len(initMP4)
				for _, f := range fmp4 {
					n := len(f) - 24
					if !bytes.Equal(f[24:], fs[at:at+n]) {
						t.Fatal("fs.mp4 does not hold the f*.m4s segments")
					}
					out = append(out, fs[at:at+n])
					at += n
				}
				return out
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o.mu.Lock()
			clear(o.counts)
			clear(o.ranges)
			o.mu.Unlock()
			c := quick(&Client{Header: http.Header{"X-Origin-Auth": {"abc"}}})
			src, err := c.Resolve(context.Background(), o.URL+"/ff/"+tt.playlist, SelectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(src.Segments) != 4 || src.Duration != 4*time.Second {
				t.Fatalf("%d segments, %v", len(src.Segments), src.Duration)
			}
			for i, s := range src.Segments {
				if s.Start != time.Duration(i)*time.Second || s.Sequence != i || s.Discontinuity {
					t.Errorf("segment %d: start %v, sequence %d, discontinuity %v", i, s.Start, s.Sequence, s.Discontinuity)
				}
				if (s.Key != nil) != tt.key || s.Map != src.Segments[0].Map || (s.Map != nil) != (tt.mapPath != "") {
					t.Errorf("segment %d: key %v, map %p (first %p)", i, s.Key, s.Map, src.Segments[0].Map)
				}
			}
			if tt.mapPath != "" {
				m := src.Segments[0].Map
				for range 2 {
					b, err := c.FetchMap(context.Background(), m)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(b, initMP4) {
						t.Errorf("init section: %d bytes, want init.mp4's %d", len(b), len(initMP4))
					}
				}
				if n := o.count(tt.mapPath); n != 1 {
					t.Errorf("init section requested %d times", n)
				}
				if tt.mapRange != "" {
					o.mu.Lock()
					r := slices.Clone(o.ranges[tt.mapPath])
					clear(o.ranges)
					o.mu.Unlock()
					if fmt.Sprint(r) != "["+tt.mapRange+"]" {
						t.Errorf("init Range headers %v, want %s", r, tt.mapRange)
					}
				}
			}
			got, err := fetchBodies(c, src.Segments, 3)
			if err != nil {
				t.Fatal(err)
			}
			checkBodies(t, got, tt.want())
			if tt.key {
				if n := o.count("/ff/k.key"); n != 1 {
					t.Errorf("key requested %d times", n)
				}
				o.mu.Lock()
				h := o.headers["/ff/k.key"]
				o.mu.Unlock()
				if h.Get("X-Origin-Auth") != "abc" {
					t.Errorf("key request without the Client's headers: %v", h)
				}
			}
			if tt.ranged != "" {
				o.mu.Lock()
				r := slices.Clone(o.ranges[tt.ranged])
				o.mu.Unlock()
				slices.Sort(r)
				want := tt.ranges
				if want == nil {
					for _, s := range src.Segments {
						want = append(want, s.Range.String())
					}
				}
				want = slices.Sorted(slices.Values(want))
				if fmt.Sprint(r) != fmt.Sprint(want) {
					t.Errorf("Range headers\n got %v\nwant %v", r, want)
				}
				wantN := len(want)
				if tt.mapPath == tt.ranged {
					wantN++ // the init section's request
				}
				if n := o.count(tt.ranged); n != wantN {
					t.Errorf("%d requests for %s, want %d", n, tt.ranged, wantN)
				}
			}
		})
	}
}

// TestHandcrafted covers the playlist shapes ffmpeg does not write: omitted
// byte-range offsets, IVs from the sequence number, 64-bit IVs, several keys
// and maps, encrypted init sections, gaps.
func TestHandcrafted(t *testing.T) {
	t.Parallel()
	o, dir := ffOrigin(t)
	key, _ := hex.DecodeString(ffKeyHex)
	keyB := []byte("0123456789ABCDEF")
	keyC := []byte("fedcba9876543210")
	var cl, f [4][]byte
	for i := range 4 {
		cl[i] = readFF(t, dir, fmt.Sprintf("c%d.ts", i))
		f[i] = readFF(t, dir, fmt.Sprintf("f%d.m4s", i))
	}
	initMP4 := readFF(t, dir, "init.mp4")
	files := map[string][]byte{ // encrypted copies, served under /x/
		"s0.ts":  encryptCBC(cl[0], key, sequenceIV(7)),
		"s1.ts":  encryptCBC(cl[1], key, sequenceIV(8)),
		"s2.ts":  encryptCBC(cl[2], key, sequenceIV(9)),
		"x0.ts":  encryptCBC(cl[0], key, ivOf("0xabc")),
		"x1.ts":  encryptCBC(cl[1], keyB, ivOf("0x0000000000000def")),
		"x3.ts":  encryptCBC(cl[3], key, sequenceIV(3)),
		"x4.ts":  encryptCBC(cl[0], keyC, sequenceIV(4)),
		"ei.mp4": encryptCBC(initMP4, key, ivOf("0x"+ffIVHex)),
		"ka.key": key,
		"kb.key": keyB,
		"ci.mp4": initMP4, // a clear init section under a key
	}
	for i := range 4 {
		files[fmt.Sprintf("ef%d.m4s", i)] = encryptCBC(f[i], key, ivOf("0x"+ffIVHex))
		files[fmt.Sprintf("c%d.ts", i)] = cl[i]
		files[fmt.Sprintf("f%d.m4s", i)] = f[i]
	}
	xdir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(xdir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o.mu.Lock()
	o.mounts["/x/"] = xdir
	o.mu.Unlock()
	n := func(i int) int { return len(cl[i]) }
	const head = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n"
	const end = "#EXT-X-ENDLIST\n"
	dataC := "data:text/plain;base64," + base64.StdEncoding.EncodeToString(keyC)

	type segCheck struct {
		start time.Duration
		seq   int
		disc  bool
	}
	tests := []struct {
		name     string
		playlist string
		want     [][]byte
		segs     []segCheck
		counts   map[string]int // path → requests expected after Fetch (and FetchMap)
		maps     []int          // segment index → map group (-1: none); same group, same *Map
		mapWant  [][]byte       // per map group
		ranges   []string       // Range headers expected for /ff/single.ts (sorted)
		duration time.Duration
	}{
		{name: "omitted byte-range offsets",
			playlist: head + fmt.Sprintf("#EXTINF:1,\n#EXT-X-BYTERANGE:%d@0\n../ff/single.ts\n#EXTINF:1,\n#EXT-X-BYTERANGE:%d\n../ff/single.ts\n"+
				"#EXTINF:1,\n#EXT-X-BYTERANGE:%d\n../ff/single.ts\n#EXTINF:1,\n#EXT-X-BYTERANGE:%d\n../ff/single.ts\n", n(0), n(1), n(2), n(3)) + end,
			want: [][]byte{cl[0], cl[1], cl[2], cl[3]},
			ranges: []string{
				fmt.Sprintf("bytes=%d-%d", 0, n(0)-1),
				fmt.Sprintf("bytes=%d-%d", n(0), n(0)+n(1)-1),
				fmt.Sprintf("bytes=%d-%d", n(0)+n(1), n(0)+n(1)+n(2)-1),
				fmt.Sprintf("bytes=%d-%d", n(0)+n(1)+n(2), n(0)+n(1)+n(2)+n(3)-1),
			}},
		{name: "omitted offset after a gap and another resource",
			playlist: head + fmt.Sprintf("#EXTINF:1,\n#EXT-X-BYTERANGE:%d@0\n../ff/single.ts\n#EXT-X-GAP\n#EXTINF:1,\n#EXT-X-BYTERANGE:%d\n../ff/single.ts\n"+
				"#EXTINF:1,\n../ff/c3.ts\n#EXTINF:1,\n#EXT-X-BYTERANGE:%d\n../ff/single.ts\n", n(0), n(1), n(2)) + end,
			want:   [][]byte{cl[0], cl[3], cl[2]},
			segs:   []segCheck{{0, 0, false}, {2 * time.Second, 2, false}, {3 * time.Second, 3, false}},
			ranges: []string{fmt.Sprintf("bytes=%d-%d", 0, n(0)-1), fmt.Sprintf("bytes=%d-%d", n(0)+n(1), n(0)+n(1)+n(2)-1)}},
		{name: "IV from the media sequence number",
			playlist: head + "#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-KEY:METHOD=AES-128,URI=\"ka.key\"\n#EXTINF:1,\ns0.ts\n#EXTINF:1,\ns1.ts\n#EXTINF:1,\ns2.ts\n" + end,
			want:     [][]byte{cl[0], cl[1], cl[2]},
			segs:     []segCheck{{0, 7, false}, {time.Second, 8, false}, {2 * time.Second, 9, false}},
			counts:   map[string]int{"/x/ka.key": 1}},
		{name: "several keys, short and 64-bit IVs, NONE, data: key",
			playlist: head + "#EXT-X-KEY:METHOD=AES-128,URI=\"ka.key\",IV=0xabc\n#EXTINF:1,\nx0.ts\n" +
				"#EXT-X-KEY:METHOD=AES-128,URI=\"kb.key\",IV=0x0000000000000DEF\n#EXTINF:1,\nx1.ts\n" +
				"#EXT-X-KEY:METHOD=NONE\n#EXTINF:1,\nc2.ts\n" +
				"#EXT-X-KEY:METHOD=AES-128,URI=\"ka.key\"\n#EXTINF:1,\nx3.ts\n" +
				"#EXT-X-KEY:METHOD=AES-128,URI=\"" + dataC + "\"\n#EXTINF:1,\nx4.ts\n" + end,
			want:   [][]byte{cl[0], cl[1], cl[2], cl[3], cl[0]},
			counts: map[string]int{"/x/ka.key": 1, "/x/kb.key": 1}},
		{name: "DRM key tags beside an identity AES-128 key",
			playlist: head + "#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://k\",KEYFORMAT=\"com.apple.streamingkeydelivery\",KEYFORMATVERSIONS=\"1\"\n" +
				"#EXT-X-KEY:METHOD=AES-128,URI=\"ka.key\",KEYFORMAT=\"identity\"\n#EXTINF:1,\ns0.ts\n" + end,
			want:   [][]byte{cl[0]},
			counts: map[string]int{"/x/ka.key": 1}},
		{name: "encrypted fMP4 init section and segments",
			playlist: head + "#EXT-X-KEY:METHOD=AES-128,URI=\"ka.key\",IV=0x" + ffIVHex + "\n#EXT-X-MAP:URI=\"ei.mp4\"\n" +
				"#EXTINF:1,\nef0.m4s\n#EXTINF:1,\nef1.m4s\n#EXTINF:1,\nef2.m4s\n#EXTINF:1,\nef3.m4s\n" + end,
			want:    [][]byte{f[0], f[1], f[2], f[3]},
			maps:    []int{0, 0, 0, 0},
			mapWant: [][]byte{initMP4},
			counts:  map[string]int{"/x/ka.key": 1, "/x/ei.mp4": 1}},
		{name: "clear init section under a key",
			playlist: head + "#EXT-X-KEY:METHOD=AES-128,URI=\"ka.key\",IV=0x" + ffIVHex + "\n#EXT-X-MAP:URI=\"ci.mp4\"\n#EXTINF:1,\nef0.m4s\n" + end,
			want:     [][]byte{f[0]}, maps: []int{0}, mapWant: [][]byte{initMP4}},
		{name: "several maps, clear segments between keys",
			playlist: head + "#EXT-X-MAP:URI=\"../ff/init.mp4\"\n#EXTINF:1,\nf0.m4s\n#EXTINF:1,\nf1.m4s\n" +
				"#EXT-X-DISCONTINUITY\n#EXT-X-KEY:METHOD=AES-128,URI=\"ka.key\",IV=0x" + ffIVHex + "\n#EXT-X-MAP:URI=\"ei.mp4\"\n#EXT-X-KEY:METHOD=NONE\n" +
				"#EXTINF:1,\nf2.m4s\n" +
				fmt.Sprintf("#EXT-X-MAP:URI=\"../ff/fs.mp4\",BYTERANGE=\"%d@0\"\n", len(initMP4)) +
				"#EXTINF:1,\nf3.m4s\n#EXTINF:1,\nf0.m4s\n" + end,
			want:    [][]byte{f[0], f[1], f[2], f[3], f[0]},
			segs:    []segCheck{{0, 0, false}, {time.Second, 1, false}, {2 * time.Second, 2, true}, {3 * time.Second, 3, false}, {4 * time.Second, 4, false}},
			maps:    []int{0, 0, 1, 2, 2},
			mapWant: [][]byte{initMP4, initMP4, initMP4},
			counts:  map[string]int{"/ff/init.mp4": 1, "/x/ei.mp4": 1, "/ff/fs.mp4": 1, "/x/ka.key": 1}},
		{name: "gaps",
			playlist: head + "#EXTINF:1,\nc0.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:1.5,\n#EXT-X-GAP\nc1.ts\n#EXTINF:2,\nc2.ts\n" +
				"#EXTINF:0.5,\n#EXT-X-GAP\nc3.ts\n#EXTINF:1,\nc0.ts\n#EXTINF:1,\n#EXT-X-GAP\nc3.ts\n" + end,
			want:     [][]byte{cl[0], cl[2], cl[0]},
			segs:     []segCheck{{0, 0, false}, {2500 * time.Millisecond, 2, true}, {5 * time.Second, 4, false}},
			counts:   map[string]int{"/x/c1.ts": 0, "/x/c3.ts": 0, "/x/c0.ts": 2},
			duration: 7 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o.mu.Lock()
			clear(o.counts)
			clear(o.ranges)
			o.mu.Unlock()
			o.page("/x/index.m3u8", tt.playlist)
			c := quick(&Client{})
			src, err := c.Resolve(context.Background(), o.URL+"/x/index.m3u8", SelectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for i, sc := range tt.segs {
				s := src.Segments[i]
				if s.Start != sc.start || s.Sequence != sc.seq || s.Discontinuity != sc.disc {
					t.Errorf("segment %d: start %v seq %d disc %v, want %+v", i, s.Start, s.Sequence, s.Discontinuity, sc)
				}
			}
			if tt.duration != 0 && src.Duration != tt.duration {
				t.Errorf("duration %v, want %v", src.Duration, tt.duration)
			}
			if tt.maps != nil {
				groups := map[int]*Map{}
				seen := map[*Map]int{}
				for i, g := range tt.maps {
					m := src.Segments[i].Map
					if m == nil {
						t.Fatalf("segment %d has no map", i)
					}
					if p, ok := groups[g]; ok && p != m {
						t.Errorf("segment %d: another *Map than the segments of the same EXT-X-MAP", i)
					}
					if h, ok := seen[m]; ok && h != g {
						t.Errorf("segment %d: the *Map of another EXT-X-MAP", i)
					}
					groups[g], seen[m] = m, g
				}
				// Concurrent and repeated FetchMap calls share one fetch.
				var wg sync.WaitGroup
				for g, want := range tt.mapWant {
					for range 3 {
						wg.Go(func() {
							b, err := c.FetchMap(context.Background(), groups[g])
							if err != nil {
								t.Error(err)
							} else if !bytes.Equal(b, want) {
								t.Errorf("map %d: %d bytes, not the %d expected", g, len(b), len(want))
							}
						})
					}
				}
				wg.Wait()
			} else {
				for i, s := range src.Segments {
					if s.Map != nil {
						t.Errorf("segment %d has a map", i)
					}
				}
			}
			got, err := fetchBodies(c, src.Segments, 3)
			if err != nil {
				t.Fatal(err)
			}
			checkBodies(t, got, tt.want)
			for path, want := range tt.counts {
				if n := o.count(path); n != want {
					t.Errorf("%s requested %d times, want %d", path, n, want)
				}
			}
			if tt.ranges != nil {
				o.mu.Lock()
				r := slices.Sorted(slices.Values(o.ranges["/ff/single.ts"]))
				o.mu.Unlock()
				if want := slices.Sorted(slices.Values(tt.ranges)); fmt.Sprint(r) != fmt.Sprint(want) {
					t.Errorf("Range headers\n got %v\nwant %v", r, want)
				}
			}
			// A new job (Resolve) fetches its keys again.
			if n := o.count("/x/ka.key"); n == 1 {
				src2, err := c.Resolve(context.Background(), o.URL+"/x/index.m3u8", SelectOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := fetchBodies(c, src2.Segments, 2); err != nil {
					t.Fatal(err)
				}
				for _, s := range src2.Segments {
					if s.Map != nil {
						if _, err := c.FetchMap(context.Background(), s.Map); err != nil {
							t.Fatal(err)
						}
					}
				}
				if n := o.count("/x/ka.key"); n != 2 {
					t.Errorf("key requested %d times over two jobs, want 2", n)
				}
			}
		})
	}
}
