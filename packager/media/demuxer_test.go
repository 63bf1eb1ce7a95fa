package media_test

import (
	"errors"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/packager/fmp4"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
	"github.com/stream-downloads/caddy-stream-downloads/packager/ts"
)

// TestInitContract: both demuxers take an init section through media.Demuxer; the
// MPEG-TS one refuses it with ts.ErrInitSection (the packager reports it as unsupported
// input), the fMP4 one parses it.
func TestInitContract(t *testing.T) {
	var d media.Demuxer = ts.NewDemuxer()
	if err := d.Init([]byte("anything")); !errors.Is(err, ts.ErrInitSection) {
		t.Errorf("ts Init: %v, want ErrInitSection", err)
	}
	d = fmp4.NewDemuxer()
	if err := d.Init(nil); err == nil || errors.Is(err, ts.ErrInitSection) {
		t.Errorf("fmp4 Init of nothing: %v, want a malformed init section", err)
	} else if !errors.Is(err, media.ErrMalformed) {
		t.Errorf("fmp4 Init of nothing: %v, want media.ErrMalformed", err)
	}
}
