package hls

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
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
