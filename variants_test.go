package streamdownloads_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// TestFFmpegVariants packages HLS streams that ffmpeg's muxer writes in different ways
// (made here, a few seconds each) through a real Caddy and compares each MP4 with its
// source.
func TestFFmpegVariants(t *testing.T) {
	video := func(size, rate string) []string {
		return []string{"-f", "lavfi", "-i", "testsrc2=size=" + size + ":rate=" + rate + ":duration=5"}
	}
	audio := func(rate string) []string {
		return []string{"-f", "lavfi", "-i", "sine=frequency=330:sample_rate=" + rate + ":duration=5"}
	}
	x264 := []string{"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"}
	hls := []string{"-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod", "-hls_segment_filename", "seg_%03d.ts"}
	cat := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	cases := []struct {
		name     string
		args     []string // ffmpeg arguments, run in the video's folder
		playlist string   // what the origin template points at
		source   string   // the playlist the output is compared with
	}{
		{
			name:     "baseline 30fps mono 44.1kHz",
			args:     cat(video("192x108", "30"), audio("44100"), x264, []string{"-profile:v", "baseline", "-g", "30", "-c:a", "aac", "-ac", "1"}, hls, []string{"index.m3u8"}),
			playlist: "index.m3u8",
		},
		{
			name:     "high profile b-pyramid 50fps",
			args:     cat(video("192x108", "50"), audio("48000"), []string{"-c:v", "libx264", "-preset", "medium", "-pix_fmt", "yuv420p", "-x264-params", "bframes=5:b-pyramid=normal:keyint=50", "-c:a", "aac"}, hls, []string{"index.m3u8"}),
			playlist: "index.m3u8",
		},
		{
			name:     "segments cut between keyframes",
			args:     cat(video("192x108", "25"), audio("48000"), x264, []string{"-g", "60", "-bf", "2", "-c:a", "aac", "-hls_flags", "split_by_time"}, hls, []string{"index.m3u8"}),
			playlist: "index.m3u8",
		},
		{
			name:     "video only",
			args:     cat(video("192x108", "25"), x264, []string{"-g", "25", "-bf", "3"}, hls, []string{"index.m3u8"}),
			playlist: "index.m3u8",
		},
		{
			name:     "audio starts half a second after video",
			args:     cat(video("192x108", "25"), []string{"-itsoffset", "0.5"}, audio("48000"), x264, []string{"-g", "25", "-bf", "2", "-c:a", "aac"}, hls, []string{"index.m3u8"}),
			playlist: "index.m3u8",
		},
		{
			name:     "no mux delay, headers resent, large timestamps",
			args:     cat(video("192x108", "25"), audio("48000"), x264, []string{"-g", "25", "-c:a", "aac", "-muxdelay", "0", "-muxpreload", "0", "-mpegts_flags", "+resend_headers", "-output_ts_offset", "50000"}, hls, []string{"index.m3u8"}),
			playlist: "index.m3u8",
		},
		{
			name: "ladder from ffmpeg's master playlist",
			args: cat(video("320x180", "25"), audio("48000"),
				[]string{"-filter_complex", "[0:v]split=2[a][b];[b]scale=160:90[c]", "-map", "[a]", "-map", "[c]", "-map", "1:a", "-map", "1:a"},
				x264, []string{"-g", "25", "-bf", "3", "-b:v:0", "400k", "-b:v:1", "100k", "-c:a", "aac",
					"-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
					"-master_pl_name", "master.m3u8", "-var_stream_map", "v:0,a:0 v:1,a:1",
					"-hls_segment_filename", "v%v/seg_%03d.ts", "v%v/index.m3u8"}),
			playlist: "master.m3u8",
			source:   "v0/index.m3u8",
		},
	}

	root := t.TempDir()
	id := func(i int) string { return "v" + string(rune('a'+i)) }
	for i, c := range cases {
		dir := filepath.Join(root, id(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		testutil.RunIn(t, dir, "ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, c.args...)...)
		// The origin template names one file for every video: link it to this one's playlist.
		if err := os.Symlink(c.playlist, filepath.Join(dir, "play.m3u8")); err != nil {
			t.Fatal(err)
		}
	}
	origin := testutil.NewOrigin(t, root)
	e := startEdge(t, origin.URL+"/{video_id}/play.m3u8", "")

	for i, c := range cases {
		if code, env := e.call("POST", "/a/stream/"+id(i)+"/downloads"); code != http.StatusOK {
			t.Fatalf("%s: POST: %d %+v", c.name, code, env.Errors)
		}
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			se := *e
			se.t = t
			en := se.waitReady(id(i), "default")
			if en.Status != "ready" {
				t.Fatalf("ended %s: %s: %s", en.Status, en.ErrorReasonCode, en.ErrorReasonText)
			}
			path, _ := se.download(en.URL)
			source := c.source
			if source == "" {
				source = c.playlist
			}
			t.Log(testutil.CompareWithSource(t, path, filepath.Join(root, id(i), source)))
		})
	}
}
