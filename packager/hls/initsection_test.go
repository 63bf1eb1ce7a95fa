package hls

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
)

// TestFetchInitSections: Fetch hands each segment's init section on with it
// (SegmentBody.Init), each EXT-X-MAP fetched once; one that fails does not end the
// Fetch: the segments using it report the failure.
func TestFetchInitSections(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	o.page("/im/index.m3u8", "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n"+
		"#EXT-X-MAP:URI=\"m1.mp4\"\n#EXTINF:4,\ns0.m4s\n#EXTINF:4,\ns1.m4s\n"+
		"#EXT-X-MAP:URI=\"m2.mp4\"\n#EXTINF:4,\ns2.m4s\n#EXT-X-ENDLIST\n")
	for path, body := range map[string]string{"/im/m1.mp4": "init one", "/im/m2.mp4": "init two",
		"/im/s0.m4s": "zero", "/im/s1.m4s": "one", "/im/s2.m4s": "two"} {
		o.page(path, body)
	}
	for _, broken := range []bool{false, true} {
		c := quick(&Client{})
		src, err := c.Resolve(context.Background(), o.URL+"/im/index.m3u8", SelectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if broken {
			o.fault("/im/m2.mp4", func(w http.ResponseWriter, _ int) bool {
				http.NotFound(w, nil)
				return true
			})
		}
		m1, m2 := o.count("/im/m1.mp4"), o.count("/im/m2.mp4")
		var inits []string
		var errs []error
		err = c.Fetch(context.Background(), src.Segments, 3, func(_ int, body io.Reader) error {
			b, err := body.(SegmentBody).Init()
			inits, errs = append(inits, string(b)), append(errs, err)
			return nil
		})
		if err != nil {
			t.Fatalf("broken %v: %v", broken, err)
		}
		if inits[0] != "init one" || inits[1] != "init one" || errs[0] != nil || errs[1] != nil {
			t.Errorf("broken %v: segments 0 and 1 got %q %v", broken, inits[:2], errs[:2])
		}
		var oe *OriginError
		switch {
		case !broken && (inits[2] != "init two" || errs[2] != nil):
			t.Errorf("segment 2 got %q %v", inits[2], errs[2])
		case broken && (!errors.As(errs[2], &oe) || oe.Status != http.StatusNotFound):
			t.Errorf("broken: segment 2 got %q %v, want a 404 *OriginError", inits[2], errs[2])
		}
		if n1, n2 := o.count("/im/m1.mp4")-m1, o.count("/im/m2.mp4")-m2; n1 != 1 || n2 != 1 {
			t.Errorf("broken %v: init sections requested %d and %d times, want once each", broken, n1, n2)
		}
	}
}
