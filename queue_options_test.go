package streamdownloads

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// TestQueueOptions: max_queue and create_wait are read from the Caddyfile, refused
// with an error naming them when wrong, and checked in JSON configs too.
func TestQueueOptions(t *testing.T) {
	parse := func(opts string) (StreamDownloads, error) {
		var s StreamDownloads
		err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser("stream_downloads {\n origin http://o/{video_id}.m3u8\n" + opts + "\n}"))
		return s, err
	}
	s, err := parse("max_queue 50\ncreate_wait 3s")
	if err != nil || s.MaxQueue != 50 || s.CreateWait != caddy.Duration(3*time.Second) {
		t.Errorf("parsed %d, %v: %v", s.MaxQueue, time.Duration(s.CreateWait), err)
	}
	for _, bad := range []string{"max_queue 0", "max_queue -1", "max_queue x", "max_queue", "max_queue 1 2", "max_queue 2000000",
		"create_wait 0s", "create_wait -1s", "create_wait soon", "create_wait"} {
		opt := strings.Fields(bad)[0]
		if _, err := parse(bad); err == nil || !strings.Contains(err.Error(), opt) {
			t.Errorf("%q: %v, want an error naming %s", bad, err, opt)
		}
	}
	ok := StreamDownloads{Origin: "http://o/{video_id}.m3u8", FetchConcurrency: 8, MaxJobs: 2}
	for _, c := range []struct {
		modify func(*StreamDownloads)
		err    string
	}{
		{func(s *StreamDownloads) { s.MaxQueue = 0 }, ""}, // the default
		{func(s *StreamDownloads) { s.MaxQueue = 10 }, ""},
		{func(s *StreamDownloads) { s.MaxQueue = -1 }, "max_queue"},
		{func(s *StreamDownloads) { s.MaxQueue = 1_000_001 }, "max_queue"},
		{func(s *StreamDownloads) { s.CreateWait = caddy.Duration(-time.Second) }, "create_wait"},
	} {
		s := ok
		c.modify(&s)
		err := s.Validate()
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("max_queue %d, create_wait %v: %v, want %q", s.MaxQueue, time.Duration(s.CreateWait), err, c.err)
		}
	}
}
