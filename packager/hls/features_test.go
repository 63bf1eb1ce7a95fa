package hls

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Streams made by ffmpeg once per test binary (4 segments of 1s, 160x90
// H.264 + AAC), served by the test origin under /ff/.
var ffFixtures struct {
	once sync.Once
	dir  string
	err  error
}

const (
	ffKeyHex = "000102030405060708090a0b0c0d0e0f"
	ffIVHex  = "0123456789abcdef0123456789abcdef"
)

func ffmpegDir(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	ffFixtures.once.Do(func() { ffFixtures.dir, ffFixtures.err = makeFFmpegFixtures() })
	if ffFixtures.err != nil {
		t.Fatal(ffFixtures.err)
	}
	return ffFixtures.dir
}

func removeFFmpegFixtures() {
	if ffFixtures.dir != "" {
		os.RemoveAll(ffFixtures.dir)
	}
}

func makeFFmpegFixtures() (string, error) {
	dir, err := os.MkdirTemp("", "hls-ffmpeg-")
	if err != nil {
		return "", err
	}
	key, _ := hex.DecodeString(ffKeyHex)
	files := map[string]string{
		"k.key":   string(key),
		"ki.txt":  "k.key\nk.key\n" + ffIVHex + "\n",
		"ki2.txt": "k.key\nk.key\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return dir, err
		}
	}
	common := []string{"-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=4",
		"-f", "lavfi", "-i", "sine=duration=4", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
		"-c:a", "aac", "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod"}
	for _, args := range [][]string{
		{"-hls_segment_filename", "c%d.ts", "clear.m3u8"},
		{"-hls_flags", "single_file", "-hls_segment_filename", "single.ts", "single.m3u8"},
		{"-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", "f%d.m4s", "fmp4.m3u8"},
		{"-hls_segment_type", "fmp4", "-hls_flags", "single_file", "-hls_segment_filename", "fs.mp4", "fs.m3u8"},
		{"-hls_key_info_file", "ki.txt", "-hls_segment_filename", "e%d.ts", "enc.m3u8"},
		{"-hls_key_info_file", "ki2.txt", "-hls_segment_filename", "n%d.ts", "encnoiv.m3u8"},
	} {
		cmd := exec.Command("ffmpeg", append(slices.Clone(common), args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return dir, fmt.Errorf("ffmpeg %v: %v\n%s", args, err, out)
		}
	}
	return dir, nil
}

func readFF(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// clearSegments are the four clear TS segments of the ffmpeg run, the bodies every
// playlist of it must give.
func clearSegments(t *testing.T, dir string) [][]byte {
	t.Helper()
	var out [][]byte
	for i := range 4 {
		out = append(out, readFF(t, dir, fmt.Sprintf("c%d.ts", i)))
	}
	return out
}

// encryptCBC is the known answer: AES-128-CBC with PKCS#7 padding.
func encryptCBC(clear, key []byte, iv [16]byte) []byte {
	pad := aes.BlockSize - len(clear)%aes.BlockSize
	b := append(slices.Clone(clear), bytes.Repeat([]byte{byte(pad)}, pad)...)
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	cipher.NewCBCEncrypter(block, iv[:]).CryptBlocks(b, b)
	return b
}

func ivOf(s string) [16]byte {
	iv, err := parseIV(s)
	if err != nil {
		panic(err)
	}
	return iv
}

func fetchBodies(c *Client, segs []Segment, conc int) ([][]byte, error) {
	var got [][]byte
	err := c.Fetch(context.Background(), segs, conc, func(i int, body io.Reader) error {
		if i != len(got) {
			return fmt.Errorf("got segment %d, want %d", i, len(got))
		}
		b, err := io.ReadAll(body)
		got = append(got, b)
		return err
	})
	return got, err
}

func checkBodies(t *testing.T, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d bodies, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("body %d: %d bytes, not the %d expected", i, len(got[i]), len(want[i]))
		}
	}
}

// ffOrigin is an origin serving the ffmpeg fixtures under /ff/, plus
// encrypted copies made here and handcrafted playlists.
func ffOrigin(t *testing.T) (*origin, string) {
	dir := ffmpegDir(t)
	o := newOrigin(t)
	o.mu.Lock()
	o.mounts["/ff/"] = dir
	o.mu.Unlock()
	return o, dir
}

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

// TestResolveFeatureErrors: what cannot be downloaded says so in one line,
// without credentials or query strings.
func TestResolveFeatureErrors(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	const head = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n"
	seg := "#EXTINF:1,\na.ts\n#EXT-X-ENDLIST\n"
	tests := []struct {
		name, playlist string
		wantErr        error
		wantMsg        string
	}{
		{"SAMPLE-AES", "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"https://k/1\",KEYFORMATVERSIONS=\"1\"\n" + seg, ErrUnsupported,
			"unsupported stream: segments encrypted with SAMPLE-AES (FairPlay/Widevine/PlayReady-style DRM) cannot be downloaded (playlist "},
		{"SAMPLE-AES-CTR", "#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI=\"data:text/plain;base64,AAAA\",KEYFORMAT=\"urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed\"\n" + seg,
			ErrUnsupported, "segments encrypted with SAMPLE-AES-CTR"},
		{"AES-256", "#EXT-X-KEY:METHOD=AES-256,URI=\"k\"\n" + seg, ErrUnsupported, "segments encrypted with METHOD=AES-256 cannot be downloaded"},
		{"unused DRM key after the last segment", seg + "#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI=\"k\"\n", ErrUnsupported, "SAMPLE-AES-CTR"},
		{"FairPlay key URI", "#EXT-X-KEY:METHOD=AES-128,URI=\"skd://abc\"\n" + seg, ErrUnsupported, "FairPlay key (skd:// URI)"},
		{"other key scheme", "#EXT-X-KEY:METHOD=AES-128,URI=\"urn:k:1\"\n" + seg, ErrUnsupported, "key URI has the scheme urn:"},
		{"DRM key format", "#EXT-X-KEY:METHOD=AES-128,URI=\"k\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n" + seg, ErrUnsupported, "DRM key format com.apple.streamingkeydelivery"},
		{"data: key not base64", "#EXT-X-KEY:METHOD=AES-128,URI=\"data:,0123456789abcdef\"\n" + seg, ErrUnsupported, "must be base64-encoded"},
		{"data: key of 8 bytes", "#EXT-X-KEY:METHOD=AES-128,URI=\"data:;base64,AAAAAAAAAAA=\"\n" + seg, ErrUnsupported, "the data: key is 8 bytes"},
		{"key without URI", "#EXT-X-KEY:METHOD=AES-128\n" + seg, ErrMalformed, ""},
		{"bad IV", "#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=0xZZ\n" + seg, ErrMalformed, "IV \"0xZZ\" is not a hexadecimal number"},
		{"IV without 0x", "#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=1234\n" + seg, ErrMalformed, "is not a hexadecimal number"},
		{"IV too long", "#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=0x" + strings.Repeat("1", 33) + "\n" + seg, ErrMalformed, "longer than 128 bits"},
		{"omitted offset first", "#EXTINF:1,\n#EXT-X-BYTERANGE:100\na.ts\n#EXT-X-ENDLIST\n", ErrMalformed,
			"segment 1: EXT-X-BYTERANGE has no offset, and no sub-range of the same resource comes before it"},
		{"omitted offset after another resource", "#EXTINF:1,\n#EXT-X-BYTERANGE:100@0\na.ts\n#EXTINF:1,\n#EXT-X-BYTERANGE:100\nb.ts\n#EXT-X-ENDLIST\n", ErrMalformed,
			"segment 2: EXT-X-BYTERANGE has no offset"},
		{"empty byte range", "#EXTINF:1,\n#EXT-X-BYTERANGE:0@0\na.ts\n#EXT-X-ENDLIST\n", ErrMalformed, "invalid EXT-X-BYTERANGE length 0"},
		{"empty map byte range", "#EXT-X-MAP:URI=\"i.mp4\",BYTERANGE=\"0@0\"\n" + seg, ErrMalformed, "EXT-X-MAP: invalid BYTERANGE"},
		{"map with an ftp URI", "#EXT-X-MAP:URI=\"ftp://x/i.mp4\"\n" + seg, ErrForbiddenHost, "URL not allowed: EXT-X-MAP of playlist http://127.0.0.1:"},
		{"map without host", "#EXT-X-MAP:URI=\"http:///i.mp4\"\n" + seg, ErrMalformed, "EXT-X-MAP: URI http:///i.mp4 has no host"},
		{"only gaps", "#EXTINF:1,\n#EXT-X-GAP\na.ts\n#EXT-X-ENDLIST\n", ErrMalformed, "every segment is a gap"},
	}
	c := quick(&Client{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o.page("/e/index.m3u8", head+tt.playlist)
			u := strings.Replace(o.URL, "http://", "http://user:pw@", 1) + "/e/index.m3u8?tok=secret"
			src, err := c.Resolve(context.Background(), u, SelectOptions{})
			if err == nil {
				t.Fatalf("no error, got %+v", src)
			}
			t.Log(err)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q, want %v containing %q", err, tt.wantErr, tt.wantMsg)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || strings.Contains(msg, "pw@") || strings.Contains(msg, "secret") {
				t.Errorf("error %q spans lines or leaks credentials", msg)
			}
		})
	}
}

// TestFetchFeatureErrors: key, decryption and byte-range failures.
func TestFetchFeatureErrors(t *testing.T) {
	t.Parallel()
	o, dir := ffOrigin(t)
	single := readFF(t, dir, "single.ts")
	c0 := readFF(t, dir, "c0.ts")
	enc := encryptCBC(c0, []byte(ffKeyHex[:16]), sequenceIV(0))
	const head = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n"
	tests := []struct {
		name      string
		playlist  string
		fault     map[string]func(w http.ResponseWriter, n int) bool
		wantErr   error // nil: success with want
		wantMsg   string
		want      [][]byte
		counts    map[string]int
		noRetries bool
	}{
		{name: "key of 17 bytes",
			playlist: "#EXT-X-KEY:METHOD=AES-128,URI=\"/k/bad.key\"\n#EXTINF:1,\n/ff/e0.ts\n",
			fault: map[string]func(http.ResponseWriter, int) bool{"/k/bad.key": func(w http.ResponseWriter, _ int) bool {
				w.Write(make([]byte, 17))
				return true
			}},
			wantMsg: "origin request for %s/k/bad.key failed: the AES-128 key is 17 bytes, it must be exactly 16", counts: map[string]int{"/k/bad.key": 1}},
		{name: "key 404",
			playlist: "#EXT-X-KEY:METHOD=AES-128,URI=\"/k/none.key\"\n#EXTINF:1,\n/ff/e0.ts\n#EXTINF:1,\n/ff/e1.ts\n",
			wantMsg:  "origin answered 404 Not Found for %s/k/none.key", counts: map[string]int{"/k/none.key": 1}},
		{name: "key 503 then served",
			playlist: "#EXT-X-KEY:METHOD=AES-128,URI=\"/ff/k.key\",IV=0x" + ffIVHex + "\n#EXTINF:1,\n/ff/e0.ts\n#EXTINF:1,\n/ff/e1.ts\n",
			fault: map[string]func(http.ResponseWriter, int) bool{"/ff/k.key": func(w http.ResponseWriter, n int) bool {
				if n == 1 {
					w.WriteHeader(http.StatusServiceUnavailable)
					return true
				}
				return false
			}},
			want: [][]byte{c0, readFF(t, dir, "c1.ts")}, counts: map[string]int{"/ff/k.key": 2}},
		{name: "wrong key",
			playlist: "#EXT-X-KEY:METHOD=AES-128,URI=\"/ff/k.key\"\n#EXTINF:1,\n/wrong/e0.ts\n",
			fault: map[string]func(http.ResponseWriter, int) bool{"/wrong/e0.ts": func(w http.ResponseWriter, _ int) bool {
				w.Write(enc)
				return true
			}},
			wantErr: ErrDecrypt, wantMsg: "decryption failed for segment %s/wrong/e0.ts: bad PKCS#7 padding after AES-128 decryption (wrong key or IV?)"},
		{name: "encrypted body not whole blocks",
			playlist: "#EXT-X-KEY:METHOD=AES-128,URI=\"/ff/k.key\"\n#EXTINF:1,\n#EXT-X-BYTERANGE:100@0\n/ff/e0.ts\n",
			wantErr:  ErrDecrypt, wantMsg: "decryption failed for segment %s/ff/e0.ts (bytes 0-99): the encrypted body is 100 bytes, not a whole number of 16-byte AES blocks"},
		{name: "server ignores Range",
			playlist: fmt.Sprintf("#EXTINF:1,\n#EXT-X-BYTERANGE:%d@0\n/r/s.ts\n#EXTINF:1,\n#EXT-X-BYTERANGE:%d\n/r/s.ts\n", len(c0), len(single)-len(c0)),
			fault: map[string]func(http.ResponseWriter, int) bool{"/r/s.ts": func(w http.ResponseWriter, _ int) bool {
				w.Header().Set("Content-Length", fmt.Sprint(len(single)))
				w.Write(single)
				return true
			}},
			want: [][]byte{c0, single[len(c0):]}},
		{name: "server ignores Range, chunked",
			playlist: "#EXTINF:1,\n#EXT-X-BYTERANGE:10@5\n/r/s.ts\n",
			fault: map[string]func(http.ResponseWriter, int) bool{"/r/s.ts": func(w http.ResponseWriter, _ int) bool {
				w.(http.Flusher).Flush()
				w.Write(single[:3000])
				return true
			}},
			want: [][]byte{single[5:15]}},
		{name: "range beyond the resource, 200",
			playlist: "#EXTINF:1,\n#EXT-X-BYTERANGE:100@3000\n/r/s.ts\n",
			fault: map[string]func(http.ResponseWriter, int) bool{"/r/s.ts": func(w http.ResponseWriter, _ int) bool {
				w.(http.Flusher).Flush()
				w.Write(single[:3050])
				return true
			}},
			wantMsg: "origin request for %s/r/s.ts (bytes 3000-3099) failed: the resource is 3050 bytes, shorter than the range 3000-3099", noRetries: true},
		{name: "206 of the wrong length",
			playlist: "#EXTINF:1,\n#EXT-X-BYTERANGE:100@0\n/r/s.ts\n",
			fault: map[string]func(http.ResponseWriter, int) bool{"/r/s.ts": func(w http.ResponseWriter, _ int) bool {
				w.Header().Set("Content-Length", "90")
				w.WriteHeader(http.StatusPartialContent)
				w.Write(single[:90])
				return true
			}},
			wantMsg: "origin request for %s/r/s.ts (bytes 0-99) failed: answered 206 with 90 bytes for a 100-byte range", noRetries: true},
		{name: "206 of the wrong range",
			playlist: "#EXTINF:1,\n#EXT-X-BYTERANGE:100@50\n/r/s.ts\n",
			fault: map[string]func(http.ResponseWriter, int) bool{"/r/s.ts": func(w http.ResponseWriter, _ int) bool {
				w.Header().Set("Content-Range", "bytes 0-99/1000")
				w.WriteHeader(http.StatusPartialContent)
				w.Write(single[:100])
				return true
			}},
			wantMsg: "answered 206 with bytes 0-99 for the requested 50-149", noRetries: true},
		{name: "206 chunked, too long",
			playlist: "#EXTINF:1,\n#EXT-X-BYTERANGE:100@0\n/r/s.ts\n",
			fault: map[string]func(http.ResponseWriter, int) bool{"/r/s.ts": func(w http.ResponseWriter, _ int) bool {
				w.WriteHeader(http.StatusPartialContent)
				w.(http.Flusher).Flush()
				w.Write(single[:150])
				return true
			}},
			wantMsg: "answered 206 with more than 100 bytes for a 100-byte range", noRetries: true},
		{name: "416",
			playlist: fmt.Sprintf("#EXTINF:1,\n#EXT-X-BYTERANGE:100@%d\n/ff/single.ts\n", len(single)),
			wantMsg:  "origin answered 416 Requested Range Not Satisfiable for %s/ff/single.ts (bytes", noRetries: true},
		{name: "206 truncated is retried",
			playlist: "#EXTINF:1,\n#EXT-X-BYTERANGE:100@0\n/r/t.ts\n",
			fault: map[string]func(http.ResponseWriter, int) bool{"/r/t.ts": func(w http.ResponseWriter, n int) bool {
				w.Header().Set("Content-Length", "100")
				w.WriteHeader(http.StatusPartialContent)
				if n > 1 {
					w.Write(single[:100])
				} else {
					w.Write(single[:40])
				}
				return true
			}},
			want: [][]byte{single[:100]}, counts: map[string]int{"/r/t.ts": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o.mu.Lock()
			clear(o.counts)
			clear(o.faults)
			o.mu.Unlock()
			for p, f := range tt.fault {
				o.fault(p, f)
			}
			o.page("/p/index.m3u8", head+tt.playlist+"#EXT-X-ENDLIST\n")
			c := &Client{}
			sleeps := record(c)
			src, err := c.Resolve(context.Background(), o.URL+"/p/index.m3u8", SelectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sleeps.take()
			got, err := fetchBodies(c, src.Segments, 2)
			if tt.want != nil {
				if err != nil {
					t.Fatal(err)
				}
				checkBodies(t, got, tt.want)
			} else {
				if err == nil {
					t.Fatal("no error")
				}
				t.Log(err)
				want := tt.wantMsg
				if strings.Contains(want, "%s") {
					want = fmt.Sprintf(want, o.URL)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\nwant %v containing %q", err, tt.wantErr, want)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error spans lines")
				}
			}
			for p, n := range tt.counts {
				if k := o.count(p); k != n {
					t.Errorf("%s requested %d times, want %d", p, k, n)
				}
			}
			if s := sleeps.take(); tt.noRetries && len(s) != 0 {
				t.Errorf("retried %d times", len(s))
			}
		})
	}
}

func TestParseIV(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"0x0123456789abcdef0123456789ABCDEF", "0123456789abcdef0123456789abcdef"},
		{"0X0000000000000abc", "00000000000000000000000000000abc"},
		{"0x1", "00000000000000000000000000000001"},
		{"0x123", "00000000000000000000000000000123"},
		{"0x", ""}, {"1234", ""}, {"0xg1", ""}, {"0x" + strings.Repeat("f", 33), ""},
	}
	for _, tt := range tests {
		iv, err := parseIV(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("parseIV(%q) accepted", tt.in)
			}
			continue
		}
		if err != nil || hex.EncodeToString(iv[:]) != tt.want {
			t.Errorf("parseIV(%q) = %x, %v", tt.in, iv, err)
		}
	}
	if iv := sequenceIV(0x0102); hex.EncodeToString(iv[:]) != "00000000000000000000000000000102" {
		t.Errorf("sequenceIV = %x", iv)
	}
}

func TestDecryptInPlace(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef")
	iv := ivOf("0x42")
	for n := range 50 {
		clear := bytes.Repeat([]byte{byte(n)}, n)
		enc := encryptCBC(clear, key, iv)
		out, err := decryptInPlace(enc, key, iv)
		if err != nil || !bytes.Equal(out, clear) || &out[:1][0] != &enc[0] {
			t.Errorf("%d bytes: %v (in place: %v)", n, err, err == nil && &out[:1][0] == &enc[0])
		}
	}
	enc := encryptCBC([]byte("hello, a message of more than one block"), key, iv)
	if _, err := decryptInPlace(enc, key, ivOf("0x43")); err != nil {
		// A wrong IV only garbles the first block; padding is in the last.
		t.Errorf("wrong IV: %v", err)
	}
	enc = encryptCBC([]byte("hello"), key, iv)
	if _, err := decryptInPlace(enc, []byte("fedcba9876543210"), iv); err == nil || !strings.Contains(err.Error(), "bad PKCS#7 padding") {
		t.Errorf("wrong key: %v", err)
	}
	if _, err := decryptInPlace(nil, key, iv); err == nil {
		t.Error("empty body accepted")
	}
}
