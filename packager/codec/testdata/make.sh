#!/bin/sh
# Regenerates the test vectors with ffmpeg (5.1 made the committed ones): a few frames of
# each stream, cut at frame boundaries. The expected values in the tests come from
# ffprobe on the same files (run with -v to see them).
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# first N packets of a raw elementary stream, by ffprobe's packet sizes
cut() { # file frames out
	n=$(ffprobe -v error -show_entries packet=size -of csv=p=0 "$1" | head -n "$2" | paste -sd+ | bc)
	head -c "$n" "$1" >"$3"
}
sine() { # rate channels
	if [ "$2" = 6 ]; then
		echo "-f lavfi -i sine=frequency=440:sample_rate=$1:duration=0.3 -af pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0"
	else
		echo "-f lavfi -i sine=frequency=440:sample_rate=$1:duration=0.3 -ac $2"
	fi
}
audio() { # rate channels codec bitrate name frames
	# shellcheck disable=SC2046
	ffmpeg -v error -y $(sine "$1" "$2") -c:a "$3" -b:a "$4" -write_xing 0 -id3v2_version 0 "$tmp/$5"
	cut "$tmp/$5" "$6" "$5"
	case "$5" in *.ac3 | *.eac3) ffmpeg -v error -y -i "$5" -c copy "$tmp/$5.mp4" ;; esac
}

audio 48000 1 ac3 64k ac3_mono48.ac3 2
audio 44100 2 ac3 96k ac3_st44.ac3 2
audio 32000 6 ac3 192k ac3_51_32.ac3 2
audio 48000 6 eac3 192k eac3_51_48.eac3 2
audio 44100 2 eac3 96k eac3_st44.eac3 2
audio 32000 1 eac3 64k eac3_mono32.eac3 2
audio 44100 2 libmp3lame 64k mp3_44st.mp3 3
audio 32000 1 libmp3lame 48k mp3_32mono.mp3 3
audio 22050 2 libmp3lame 32k mp3_22st.mp3 3
audio 16000 1 libmp3lame 24k mp3_16mono.mp3 3
audio 11025 1 libmp3lame 16k mp3_11mono.mp3 3
audio 8000 1 libmp3lame 8k mp3_8mono.mp3 3
audio 48000 2 mp2 128k mp2_48st.mp2 2
audio 24000 1 mp2 32k mp2_24mono.mp2 2

# Opus in MPEG-TS: the first PES payload (control headers + packets) of each stream;
# the PMT descriptors and the dOps ffmpeg writes to MP4 are hex in opus_test.go.
for ch in 1 2 6; do
	# shellcheck disable=SC2046
	ffmpeg -v error -y $(sine 48000 $ch) -c:a libopus -b:a 32k -f mpegts "$tmp/opus$ch.ts"
	python3 - "$tmp/opus$ch.ts" "opus_${ch}ch_pes0.bin" <<'PY'
import sys
d = open(sys.argv[1], 'rb').read()
pes = None
for i in range(0, len(d), 188):
    p = d[i:i + 188]
    pid = (p[1] & 0x1f) << 8 | p[2]
    if pid != 0x100:
        continue
    off = 4 + (1 + p[4] if p[3] & 0x20 else 0)
    if p[1] & 0x40:
        if pes is not None:
            break
        pes = bytearray()
    if pes is not None:
        pes += p[off:]
open(sys.argv[2], 'wb').write(pes[9 + pes[8]:])
PY
done
