package streamdownloads_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// ladderOrigin returns an origin folder with video "ladder", a master playlist of three
// renditions 360, 240 and 144 lines high (the demo's two, and a 360p made of its 240p
// with ffmpeg), and video "flat", whose variants say no RESOLUTION.
func ladderOrigin(t *testing.T) string {
	dir := demoCopies(t, "ladder")
	ladder := filepath.Join(dir, "ladder")
	if err := os.Mkdir(filepath.Join(ladder, "360p"), 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.RunIn(t, ladder, "ffmpeg", "-v", "error", "-i", "240p/index.m3u8", "-vf", "scale=640:360",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "48", "-c:a", "copy",
		"-f", "hls", "-hls_time", "4", "-hls_playlist_type", "vod", "-hls_segment_filename", "360p/seg_%03d.ts", "360p/index.m3u8")
	put := func(name, content string) {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put(filepath.Join(ladder, "master.m3u8"), "#EXTM3U\n#EXT-X-VERSION:3\n"+
		"#EXT-X-STREAM-INF:BANDWIDTH=200000,RESOLUTION=256x144,CODECS=\"avc1.640015,mp4a.40.2\"\n144p/index.m3u8\n"+
		"#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS=\"avc1.640015,mp4a.40.2\"\n360p/index.m3u8\n"+
		"#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=426x240,CODECS=\"avc1.640015,mp4a.40.2\"\n240p/index.m3u8\n")
	put(filepath.Join(dir, "flat", "master.m3u8"), "#EXTM3U\n#EXT-X-VERSION:3\n"+
		"#EXT-X-STREAM-INF:BANDWIDTH=400000\n../ladder/240p/index.m3u8\n"+
		"#EXT-X-STREAM-INF:BANDWIDTH=200000\n../ladder/144p/index.m3u8\n")
	return dir
}

// videoHeight is the height of the only video stream of the MP4 at path.
func videoHeight(t *testing.T, path string) int {
	t.Helper()
	var heights []int
	for _, s := range testutil.ProbeFile(t, path).Streams {
		if s.CodecType == "video" {
			heights = append(heights, s.Height)
		}
	}
	if len(heights) != 1 {
		t.Fatalf("%s has video streams of heights %v, want one", path, heights)
	}
	return heights[0]
}

// TestHeightTypes: POST …/downloads/{N}p packages the rendition N high or the nearest
// below, delivered as {N}p.mp4 and listed under its name; a height below every
// rendition, or a stream that says none, answers 404 naming why; DELETE by type.
func TestHeightTypes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Caddy and ffmpeg")
	}
	origin := testutil.NewOrigin(t, ladderOrigin(t))
	e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", "")

	if resp, body := e.send("GET", "/ladder/downloads/240p.mp4", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("240p.mp4 before it is created: %d %s", resp.StatusCode, body)
	}
	for typ, height := range map[string]int{"default": 360, "240p": 240, "200p": 144, "4320p": 360} {
		if code, env := e.call("POST", "/a/stream/ladder/downloads/"+typ); code != http.StatusOK {
			t.Fatalf("POST %s: %d %+v", typ, code, env.Errors)
		}
		en := e.waitReady("ladder", typ)
		if en.Status != "ready" {
			t.Fatalf("%s ended %s: %s", typ, en.Status, en.ErrorReasonText)
		}
		if !strings.HasSuffix(en.URL, "/ladder/downloads/"+typ+".mp4") {
			t.Errorf("%s: url %s", typ, en.URL)
		}
		path, resp := e.download(en.URL)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "video/mp4" {
			t.Fatalf("GET %s: %d %s", en.URL, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if got := videoHeight(t, path); got != height {
			t.Errorf("%s is %d lines high, want %d", typ, got, height)
		}
	}

	for _, c := range []struct{ video, typ, msg string }{
		{"ladder", "100p", "video ladder: the stream has no rendition of 100p or lower (it has 144p, 240p, 360p)"},
		{"flat", "720p", "video flat: the stream has no rendition of 720p or lower: its playlists give no resolution"},
		{"nobody", "720p", "the origin has no video nobody"},
	} {
		code, env := e.call("POST", "/a/stream/"+c.video+"/downloads/"+c.typ)
		if code != http.StatusNotFound || len(env.Errors) != 1 || env.Errors[0].Message != c.msg {
			t.Errorf("POST %s/%s: %d %+v, want 404 %q", c.video, c.typ, code, env.Errors, c.msg)
		}
	}
	for _, typ := range []string{"0p", "720P", "0720p", "9999p"} {
		if code, env := e.call("POST", "/a/stream/ladder/downloads/"+typ); code != http.StatusBadRequest {
			t.Errorf("POST %s: %d %+v, want 400", typ, code, env.Errors)
		}
	}

	code, env := e.call("GET", "/a/stream/ladder/downloads")
	if code != http.StatusOK || len(env.Result) != 4 {
		t.Fatalf("GET lists %d %+v, want default, 240p, 200p and 4320p", code, env.Result)
	}
	if code, env := e.call("GET", "/a/stream/ladder/downloads/200p"); code != http.StatusOK || len(env.Result) != 1 || env.Result["200p"].Status != "ready" {
		t.Errorf("GET 200p: %d %+v", code, env.Result)
	}
	if code, env := e.call("DELETE", "/a/stream/ladder/downloads/200p"); code != http.StatusOK || len(env.Result) != 3 {
		t.Errorf("DELETE 200p: %d %+v, want the three others left", code, env.Result)
	}
	if resp, _ := e.send("GET", "/ladder/downloads/200p.mp4", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("200p.mp4 after its delete: %d", resp.StatusCode)
	}
	if resp, _ := e.send("GET", "/ladder/downloads/240p.mp4", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("240p.mp4 after another type's delete: %d", resp.StatusCode)
	}
}

// TestTypesOption: types limits what may be created (400 naming the types) and
// delivered (404); an allowed height is created by an on-demand GET, and delivered to
// a signed URL of a private video.
func TestTypesOption(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Caddy and ffmpeg")
	}
	key := filepath.Join(t.TempDir(), "k1.pem")
	if err := os.WriteFile(key, pemOf(t, "PRIVATE KEY", newSigner(t).rsa), 0o600); err != nil {
		t.Fatal(err)
	}
	origin := testutil.NewOrigin(t, ladderOrigin(t))
	e := startEdge(t, origin.URL+"/{video_id}/master.m3u8",
		"\t\ttypes default 240p\n\t\ton_demand 2m\n\t\trequire_signed_urls\n\t\tsigning_key k1 "+key+"\n")

	for _, typ := range []string{"144p", "audio", "360p"} {
		code, env := e.call("POST", "/a/stream/ladder/downloads/"+typ)
		want := `download type "` + typ + `" is not offered here: use default, 240p (types)`
		if code != http.StatusBadRequest || len(env.Errors) != 1 || env.Errors[0].Message != want {
			t.Errorf("POST %s: %d %+v, want 400 %q", typ, code, env.Errors, want)
		}
	}
	req, err := http.NewRequest("POST", e.base+"/a/stream/ladder/token", strings.NewReader(`{"downloadable": true}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiToken)
	var tok struct {
		Result struct{ Token string } `json:"result"`
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || tok.Result.Token == "" {
		t.Fatalf("token: %v %+v", err, tok)
	}
	token := tok.Result.Token

	for _, file := range []string{"144p.mp4", "audio.m4a", "360p.mp4"} {
		if resp, body := e.send("GET", "/"+token+"/downloads/"+file, ""); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s, not in types: %d %s", file, resp.StatusCode, body)
		}
	}
	if resp, _ := e.send("GET", "/ladder/downloads/240p.mp4", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("240p.mp4 of a private video without a token: %d", resp.StatusCode)
	}
	// On demand, to a signed URL: created, waited for, delivered.
	path, resp := e.download(e.base + "/" + token + "/downloads/240p.mp4")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("on-demand GET of 240p.mp4: %d", resp.StatusCode)
	}
	if got := videoHeight(t, path); got != 240 {
		t.Errorf("240p.mp4 is %d lines high", got)
	}
	code, env := e.call("GET", "/a/stream/ladder/downloads")
	if code != http.StatusOK || len(env.Result) != 1 || env.Result["240p"].Status != "ready" ||
		!strings.HasSuffix(env.Result["240p"].URL, "/ladder/downloads/240p.mp4") {
		t.Errorf("GET lists %d %+v, want 240p ready", code, env.Result)
	}
}
