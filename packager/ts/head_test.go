package ts

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
)

// TestVideoHidden: mediacommon finds the same tracks (codec and its configuration) with
// the video packets hidden as without, on every committed TS segment; no packet that
// starts a video PES gets through; misaligned input goes through byte for byte.
func TestVideoHidden(t *testing.T) {
	var files []string
	for _, g := range []string{"../../testdata/conformance/streams/*/*.ts", "../../testdata/conformance/streams/*/*/*.ts", "../../testdata/demo/origin/*/*/*.ts"} {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	if len(files) < 40 {
		t.Fatalf("only %d TS files found", len(files))
	}
	tracks := func(r io.Reader) (string, error) {
		rd := &mpegts.Reader{R: r}
		if err := rd.Initialize(); err != nil {
			return "", err
		}
		var s string
		for _, tr := range rd.Tracks() {
			s += fmt.Sprintf("%d:%T%+v;", tr.PID, tr.Codec, tr.Codec)
		}
		return s, nil
	}
	hidden := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		want, err1 := tracks(bytes.NewReader(data))
		got, err2 := tracks(&videoHidden{r: bytes.NewReader(data)})
		if got != want || (err1 == nil) != (err2 == nil) {
			t.Errorf("%s: tracks %q (%v) with video hidden, %q (%v) without", f, got, err2, want, err1)
		}
		out, err := io.ReadAll(&videoHidden{r: bytes.NewReader(data)})
		if err != nil {
			t.Fatal(err)
		}
		hidden += (len(data) - len(out)) / tsPacketSize
		for p := out; len(p) >= tsPacketSize; p = p[tsPacketSize:] {
			if p[1]&0x40 != 0 && bytes.HasPrefix(p[4+int(p[3]>>5&1)*(1+int(p[4])):], []byte{0, 0, 1, 0xe0}) {
				t.Fatalf("%s: a video PES start got through", f)
			}
		}
	}
	if hidden == 0 {
		t.Error("no packet was hidden")
	}

	// Garbage before the first packet: nothing is dropped, the Reader resyncs itself.
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte("garbage"), data...)
	out, err := io.ReadAll(&videoHidden{r: bytes.NewReader(bad)})
	if err != nil || !bytes.Equal(out, bad) {
		t.Errorf("misaligned input: %d of %d bytes back, %v", len(out), len(bad), err)
	}
}
