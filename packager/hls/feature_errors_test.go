package hls

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

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
