#!/usr/bin/env bash
# Makes the benchmark inputs in bench/data/ (not committed: hundreds of MB):
#   ts10, fmp410  MINUTES minutes of 1080p25 H.264 (B-frames) at about 6 Mb/s + AAC 128k,
#                 as VOD HLS with 6-second MPEG-TS or fMP4 segments;
#   ts60, fmp460  the same video looped LOOPS times (stream copy, no re-encode).
# Smaller runs for trying the scripts: MINUTES=1 HEIGHT=360 LOOPS=2 bench/make-inputs.sh
set -euo pipefail
cd "$(dirname "$0")"
MINUTES=${MINUTES:-10}
HEIGHT=${HEIGHT:-1080}
LOOPS=${LOOPS:-6}
BITRATE=${BITRATE:-6M}
data=data
mkdir -p "$data"

src="$data/source-${MINUTES}m-${HEIGHT}p.mp4"
if [ ! -f "$src" ]; then
	echo "encoding $src (this takes a while)…"
	# Temporal noise keeps x264 at the target rate, as camera footage would.
	ffmpeg -hide_banner -loglevel error -y \
		-f lavfi -i "testsrc2=size=$((HEIGHT * 16 / 9 / 2 * 2))x${HEIGHT}:rate=25" \
		-f lavfi -i "sine=frequency=440:sample_rate=48000" \
		-t $((MINUTES * 60)) -vf "noise=alls=8:allf=t" \
		-c:v libx264 -preset veryfast -bf 3 -g 50 -keyint_min 50 -sc_threshold 0 \
		-b:v "$BITRATE" -maxrate "$BITRATE" -bufsize "$BITRATE" -pix_fmt yuv420p \
		-c:a aac -b:a 128k -ac 2 "$src"
fi
long="$data/source-$((MINUTES * LOOPS))m-${HEIGHT}p.mp4"
if [ ! -f "$long" ]; then
	ffmpeg -hide_banner -loglevel error -y -stream_loop $((LOOPS - 1)) -i "$src" -c copy "$long"
fi

segment() { # <input> <name> <mpegts|fmp4>
	local dir="$data/$2"
	[ -f "$dir/index.m3u8" ] && return
	rm -rf "$dir" && mkdir -p "$dir"
	local ext=ts
	[ "$3" = fmp4 ] && ext=m4s
	ffmpeg -hide_banner -loglevel error -y -i "$1" -c copy -f hls -hls_time 6 \
		-hls_playlist_type vod -hls_segment_type "$3" \
		-hls_segment_filename "$dir/seg_%05d.$ext" "$dir/index.m3u8"
}
segment "$src" ts10 mpegts
segment "$src" fmp410 fmp4
segment "$long" ts60 mpegts
segment "$long" fmp460 fmp4
du -sh "$data"/ts10 "$data"/fmp410 "$data"/ts60 "$data"/fmp460
