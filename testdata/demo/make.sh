#!/usr/bin/env bash
# Makes the demo HLS origin in testdata/demo/origin/demo/: a 12-second test pattern with a tone,
# as two H.264 (with B-frames) + AAC variants in MPEG-TS segments behind a master playlist,
# written by ffmpeg's own HLS muxer. The output is committed (about 1 MB); rerun to regenerate.
set -euo pipefail
cd "$(dirname "$0")"
out=origin/demo
rm -rf "$out"
mkdir -p "$out/240p" "$out/144p"

common=(-hide_banner -loglevel error -y
  -f lavfi -i "testsrc2=size=426x240:rate=25:duration=12"
  -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=12"
  -c:v libx264 -preset veryfast -profile:v high -bf 3 -g 50 -keyint_min 50 -sc_threshold 0
  -pix_fmt yuv420p -c:a aac -ac 2 -b:a 64k
  -fflags +bitexact -flags:v +bitexact -flags:a +bitexact
  -f hls -hls_time 4 -hls_playlist_type vod -hls_segment_type mpegts)

ffmpeg "${common[@]}" -b:v 300k -maxrate 300k -bufsize 600k \
  -hls_segment_filename "$out/240p/seg_%03d.ts" "$out/240p/index.m3u8"
ffmpeg "${common[@]}" -vf scale=256:144 -b:v 120k -maxrate 120k -bufsize 240k \
  -hls_segment_filename "$out/144p/seg_%03d.ts" "$out/144p/index.m3u8"

cat > "$out/master.m3u8" <<'M3U8'
#EXTM3U
#EXT-X-VERSION:3
#EXT-X-STREAM-INF:BANDWIDTH=200000,RESOLUTION=256x144,CODECS="avc1.640015,mp4a.40.2"
144p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=426x240,CODECS="avc1.640015,mp4a.40.2"
240p/index.m3u8
M3U8
