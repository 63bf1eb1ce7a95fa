#!/usr/bin/env bash
# Makes the conformance streams: one small HLS VOD stream per flavour of input the module must
# package (or refuse), in streams/<flavour>/ with the entry point streams/<flavour>/play.m3u8.
# See README.md for the list. The outputs are committed; rerun to regenerate them:
#
#   testdata/conformance/make.sh           # rewrite streams/ and SHA256SUMS
#   testdata/conformance/make.sh --check   # regenerate into a temp dir, compare with streams/
#
# Needs ffmpeg (with libx264, libx265, libmp3lame, libopus, libaom: Debian's package has them),
# openssl and Go (internal/tsrecut/cmd/tsrecut re-cuts and damages segments,
# internal/packedaudio/cmd/packedaudio makes packed-audio segments).
# Deterministic: bit-exact muxers, single-threaded encoders, a fixed key, no random IVs,
# seeded re-cut patterns.
set -euo pipefail
export LC_ALL=C
here="$(cd "$(dirname "$0")" && pwd)"
check=0
[ "${1:-}" = "--check" ] && check=1

for tool in ffmpeg ffprobe openssl sha256sum go; do
	command -v "$tool" >/dev/null || { echo "make.sh: $tool is needed" >&2; exit 1; }
done
encoders="$(ffmpeg -hide_banner -encoders 2>/dev/null)"
for enc in libx264 libx265 libmp3lame libopus libaom-av1 ac3 eac3 mp2 dca; do
	grep -q " $enc " <<< "$encoders" || { echo "make.sh: ffmpeg has no $enc encoder" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
out="$work/streams"
mkdir -p "$out"
tsrecut="$work/tsrecut"
packedaudio="$work/packedaudio"
(cd "$here/../.." && go build -o "$tsrecut" ./internal/tsrecut/cmd/tsrecut && go build -o "$packedaudio" ./internal/packedaudio/cmd/packedaudio)

# --- building blocks ------------------------------------------------------------------------

DUR=3 # seconds of every stream (the discontinuity has two parts of 2 s, mid-GOP 4 s minus 1)
video_in() { echo -f lavfi -i "testsrc2=size=${2:-160x90}:rate=25:duration=${1:-$DUR}"; }
audio_in() { echo -f lavfi -i "sine=frequency=440:beep_factor=4:sample_rate=48000:duration=${1:-$DUR}"; }
ff=(ffmpeg -hide_banner -loglevel error -y -nostdin)
bitexact=(-threads 1 -fflags +bitexact -flags:v +bitexact -flags:a +bitexact)
# H.264 High with 2 B-frames, a keyframe every second (25 frames), segments of 1 s.
x264=(-c:v libx264 -preset veryfast -profile:v high -bf 2 -g 25 -keyint_min 25 -sc_threshold 0
	-pix_fmt yuv420p -b:v 60k -maxrate 80k -bufsize 120k -x264-params threads=1)
x265=(-c:v libx265 -preset ultrafast -pix_fmt yuv420p -b:v 60k
	-x265-params "log-level=error:keyint=25:min-keyint=25:scenecut=0:bframes=2:pools=1:frame-threads=1:wpp=0")
aac=(-c:a aac -b:a 32k -ac 2)
hls=(-f hls -hls_time 1 -hls_playlist_type vod -hls_list_size 0)
# The flavours of other audio codecs (issue 11) take half the video bitrate: smaller files.
x264s=("${x264[@]}" -b:v 30k -maxrate 40k -bufsize 60k)
ac3=(-c:a ac3 -b:a 48k -ac 6)    # AC-3 5.1 (3/2 + LFE)
eac3=(-c:a eac3 -b:a 48k -ac 6)  # E-AC-3 5.1
mp3=(-c:a libmp3lame -b:a 32k -ac 2)
opus=(-c:a libopus -b:a 24k -ac 2)

# encode DIR FFMPEG-ARGS…: runs ffmpeg in DIR (made if missing).
encode() {
	local dir="$1"; shift
	mkdir -p "$dir"
	(cd "$dir" && "${ff[@]}" "$@")
}

# packet_span INPUT: seconds from the earliest packet PTS to the latest packet end, over all
# streams (what a part lasts on a continuous timeline; ffprobe's format duration of TS is an
# estimate).
packet_span() {
	ffprobe -v error -show_entries packet=pts_time,duration_time -of csv=p=0 "$1" |
		awk -F, '$1 ~ /^[0-9]/ { s = $1 + 0; e = s + ($2 ~ /^[0-9]/ ? $2 : 0); if (!n++ || s < lo) lo = s; if (e > hi) hi = e } END { printf "%.6f", hi - lo }'
}

# ts_segments DIR MPEGTS-OPTIONS FFMPEG-ARGS…: as encode with "${hls[@]}" into DIR/seg_NNN.ts
# and DIR/play.m3u8, but cut by the segment muxer, which passes options to the mpegts muxer
# (e.g. mpegts_flags=system_b or latm): the hls muxer cannot, it sets mpegts_flags to
# resend_headers at every segment, overriding them. PAT, PMT and SDT once at the start of each
# segment, as the hls muxer writes them; the playlist as the hls muxer writes it.
ts_segments() {
	local dir="$1" opts="pat_period=3600:sdt_period=3600${2:+:$2}"
	shift 2
	encode "$dir" "$@" -f segment -segment_format mpegts -segment_format_options "$opts" -segment_time 1 \
		-segment_list_type m3u8 -segment_list "$work/segments.m3u8" 'seg_%03d.ts'
	media_playlist "" $(cd "$dir" && ls seg_*.ts) > "$dir/play.m3u8"
}

# media_playlist PREFIX SEGMENT…: a VOD media playlist of 1 s segments, each URI prefixed.
media_playlist() {
	local prefix="$1"; shift
	printf '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n'
	for seg in "$@"; do printf '#EXTINF:1.000000,\n%s%s\n' "$prefix" "$seg"; done
	printf '#EXT-X-ENDLIST\n'
}

# --- supported flavours ---------------------------------------------------------------------

# ts-h264-aac: master playlist, two variants; the higher BANDWIDTH one (160x90) is listed second.
d="$out/ts-h264-aac"
encode "$d/hi" $(video_in) $(audio_in) "${x264[@]}" "${aac[@]}" "${bitexact[@]}" "${hls[@]}" -hls_segment_filename 'seg_%03d.ts' index.m3u8
encode "$d/lo" $(video_in "$DUR" 128x72) $(audio_in) "${x264[@]}" -b:v 30k -maxrate 40k "${aac[@]}" "${bitexact[@]}" "${hls[@]}" -hls_segment_filename 'seg_%03d.ts' index.m3u8
cat > "$d/play.m3u8" <<'M3U8'
#EXTM3U
#EXT-X-VERSION:3
#EXT-X-STREAM-INF:BANDWIDTH=90000,RESOLUTION=128x72,CODECS="avc1.64000b,mp4a.40.2"
lo/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=130000,RESOLUTION=160x90,CODECS="avc1.64000c,mp4a.40.2"
hi/index.m3u8
M3U8

# ts-hevc-aac: HEVC (libx265, 2 B-frames) + AAC in MPEG-TS.
encode "$out/ts-hevc-aac" $(video_in) $(audio_in) "${x265[@]}" "${aac[@]}" "${bitexact[@]}" "${hls[@]}" -hls_segment_filename 'seg_%03d.ts' play.m3u8

# fmp4-h264-aac: fMP4 (EXT-X-MAP init.mp4) with two fragments per segment: ffmpeg writes
# half-second segments (split_by_time), pairs of them are joined into one 1 s segment.
d="$out/fmp4-h264-aac"
encode "$work/frags" $(video_in) $(audio_in) "${x264[@]}" "${aac[@]}" "${bitexact[@]}" "${hls[@]}" -hls_time 0.5 -hls_flags split_by_time \
	-hls_segment_type fmp4 -hls_segment_filename 'f_%03d.m4s' f.m3u8
mkdir -p "$d"
cp "$work/frags/init.mp4" "$d/"
awk -v dir="$work/frags" -v outdir="$d" '
	/^#EXTINF:/ { split(substr($0, 9), a, ","); dur = a[1]; next }
	/^f_[0-9]+\.m4s$/ {
		n++; files = files " " dir "/" $0; total += dur
		if (n % 2 == 0) {
			name = sprintf("seg_%03d.m4s", n / 2 - 1)
			system("cat" files " > " outdir "/" name)
			printf "#EXTINF:%.6f,\n%s\n", total, name
			files = ""; total = 0
		}
		next
	}
	/^#EXT-X-ENDLIST/ {
		if (n % 2 == 1) { name = sprintf("seg_%03d.m4s", (n + 1) / 2 - 1); system("cat" files " > " outdir "/" name); printf "#EXTINF:%.6f,\n%s\n", total, name }
	}
	{ print }
' "$work/frags/f.m3u8" > "$d/play.m3u8"

# fmp4-hevc-aac: HEVC as hvc1 in fMP4.
encode "$out/fmp4-hevc-aac" $(video_in) $(audio_in) "${x265[@]}" -tag:v hvc1 "${aac[@]}" "${bitexact[@]}" "${hls[@]}" \
	-hls_segment_type fmp4 -hls_segment_filename 'seg_%03d.m4s' play.m3u8

# separate-audio: master with an EXT-X-MEDIA audio group; the variant is video only.
encode "$out/separate-audio" $(video_in) $(audio_in) -map 0:v -map 1:a "${x264[@]}" "${aac[@]}" "${bitexact[@]}" "${hls[@]}" \
	-master_pl_name play.m3u8 -var_stream_map "v:0,agroup:aud,name:video a:0,agroup:aud,name:audio,default:yes" \
	-hls_segment_filename '%v_%03d.ts' '%v.m3u8'

# video-only and audio-only (TS and fMP4).
encode "$out/video-only" $(video_in) "${x264[@]}" "${bitexact[@]}" "${hls[@]}" -hls_segment_filename 'seg_%03d.ts' play.m3u8
encode "$out/audio-only" $(audio_in) "${aac[@]}" "${bitexact[@]}" "${hls[@]}" -hls_segment_filename 'seg_%03d.ts' play.m3u8
encode "$out/audio-only-fmp4" $(audio_in) "${aac[@]}" "${bitexact[@]}" "${hls[@]}" -hls_segment_type fmp4 -hls_segment_filename 'seg_%03d.m4s' play.m3u8

# byterange-single-file: one TS file, EXT-X-BYTERANGE with the offset given only for the
# first segment (omitted offset = continue after the previous range).
d="$out/byterange-single-file"
encode "$d" $(video_in) $(audio_in) "${x264[@]}" "${aac[@]}" "${bitexact[@]}" "${hls[@]}" -hls_flags single_file -hls_segment_filename 'media.ts' play.m3u8
awk '/^#EXT-X-BYTERANGE:/ && seen++ { sub(/@[0-9]+$/, "") } { print }' "$d/play.m3u8" > "$work/p" && mv "$work/p" "$d/play.m3u8"

# byterange-fmp4: one fMP4 file (init and fragments as byte ranges, offsets given).
encode "$out/byterange-fmp4" $(video_in) $(audio_in) "${x264[@]}" "${aac[@]}" "${bitexact[@]}" "${hls[@]}" -hls_flags single_file \
	-hls_segment_type fmp4 -hls_segment_filename 'media.mp4' play.m3u8

# aes128: AES-128 by ffmpeg, key.bin beside the playlist, IV in the tag.
key=000102030405060708090a0b0c0d0e0f
d="$out/aes128"
mkdir -p "$d"
printf '%b' "$(sed 's/../\\x&/g' <<< "$key")" > "$d/key.bin"
printf 'key.bin\n%s\n%s\n' "$d/key.bin" 0f1e2d3c4b5a69788796a5b4c3d2e1f0 > "$work/keyinfo"
encode "$d" $(video_in) $(audio_in) "${x264[@]}" "${aac[@]}" "${bitexact[@]}" "${hls[@]}" -hls_key_info_file "$work/keyinfo" -hls_segment_filename 'seg_%03d.ts' play.m3u8

# aes128-no-iv: no IV attribute, so each segment's IV is its media sequence number (which
# starts at 3 here); encrypted with openssl, since ffmpeg always writes an IV.
d="$out/aes128-no-iv"
encode "$work/plain" $(video_in) $(audio_in) "${x264[@]}" "${aac[@]}" "${bitexact[@]}" "${hls[@]}" -start_number 3 -hls_segment_filename 'seg_%03d.ts' play.m3u8
mkdir -p "$d"
cp "$out/aes128/key.bin" "$d/key.bin"
for f in "$work"/plain/seg_*.ts; do
	n=$((10#$(basename "$f" .ts | sed 's/seg_//')))
	openssl aes-128-cbc -e -K "$key" -iv "$(printf '%032x' "$n")" -in "$f" -out "$d/$(basename "$f")"
done
awk '/^#EXT-X-MEDIA-SEQUENCE:3$/ { print; print "#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\""; next } { print }' "$work/plain/play.m3u8" > "$d/play.m3u8"
grep -q '^#EXT-X-KEY' "$d/play.m3u8"

# discontinuity: two encodes with different timestamps (the second starts earlier than the
# first ends), joined with EXT-X-DISCONTINUITY. reference.ffconcat is the continuous timeline
# the output must have (for ffprobe; part A's length measured from its packets).
d="$out/discontinuity"
encode "$d/a" $(video_in 2) $(audio_in 2) "${x264[@]}" "${aac[@]}" "${bitexact[@]}" -output_ts_offset 100 "${hls[@]}" -hls_segment_filename 'seg_%03d.ts' index.m3u8
encode "$d/b" -f lavfi -i "smptehdbars=size=160x90:rate=25:duration=2" -f lavfi -i "sine=frequency=660:sample_rate=48000:duration=2" \
	"${x264[@]}" "${aac[@]}" "${bitexact[@]}" -output_ts_offset 5 "${hls[@]}" -hls_segment_filename 'seg_%03d.ts' index.m3u8
{
	sed -n '1,/^#EXT-X-PLAYLIST-TYPE/p' "$d/a/index.m3u8"
	grep -v '^#EXT-X-ENDLIST' "$d/a/index.m3u8" | sed -n '/^#EXTINF/,$p' | sed 's#^seg_#a/seg_#'
	echo '#EXT-X-DISCONTINUITY'
	sed -n '/^#EXTINF/,$p' "$d/b/index.m3u8" | sed 's#^seg_#b/seg_#'
} > "$d/play.m3u8"
span_a="$(packet_span "$d/a/index.m3u8")"
printf 'ffconcat version 1.0\nfile a/index.m3u8\nduration %s\nfile b/index.m3u8\n' "$span_a" > "$d/reference.ffconcat"

# wrap: timestamps start 2.6 s before 2^33 / 90 kHz (95443.7 s), so they wrap mid-stream.
encode "$out/wrap" $(video_in) $(audio_in) "${x264[@]}" "${aac[@]}" "${bitexact[@]}" -output_ts_offset 95441 "${hls[@]}" -hls_segment_filename 'seg_%03d.ts' play.m3u8

# gap: the middle segment is an EXT-X-GAP (its file is not there); source.m3u8 lists the
# segments that exist, for the comparison (the output keeps the timeline, hole included).
d="$out/gap"
encode "$d" $(video_in) $(audio_in) "${x264[@]}" "${aac[@]}" "${bitexact[@]}" "${hls[@]}" -hls_segment_filename 'seg_%03d.ts' play.m3u8
sed 's/^#EXT-X-VERSION:.*/#EXT-X-VERSION:8/' "$d/play.m3u8" | awk '/^#EXTINF/ { hold = $0; next } /^seg_001\.ts$/ { print "#EXT-X-GAP" } hold { print hold; hold = "" } { print }' > "$work/p"
awk '/^#EXT-X-GAP/ { skip = 2; next } skip && skip-- { next } { print }' "$work/p" > "$d/source.m3u8"
mv "$work/p" "$d/play.m3u8"
rm "$d/seg_001.ts"

# aac-mono and aac-51.
encode "$out/aac-mono" $(video_in) $(audio_in) "${x264[@]}" -c:a aac -b:a 32k -ac 1 "${bitexact[@]}" "${hls[@]}" -hls_segment_filename 'seg_%03d.ts' play.m3u8
encode "$out/aac-51" $(video_in) $(audio_in) "${x264[@]}" -c:a aac -b:a 96k -ac 6 "${bitexact[@]}" "${hls[@]}" -hls_segment_filename 'seg_%03d.ts' play.m3u8

# first-segment-mid-gop: 2 s GOPs cut every second (split_by_time), the first segment left
# out: the stream starts with a second of frames that cannot be decoded.
d="$out/first-segment-mid-gop"
encode "$d" $(video_in 4) $(audio_in 4) "${x264[@]}" -g 50 -keyint_min 50 "${aac[@]}" "${bitexact[@]}" "${hls[@]}" -hls_flags split_by_time -hls_segment_filename 'seg_%03d.ts' play.m3u8
awk '/^#EXT-X-MEDIA-SEQUENCE:/ { print "#EXT-X-MEDIA-SEQUENCE:1"; next } /^#EXTINF/ && !dropped { getline; dropped = 1; next } { print }' "$d/play.m3u8" > "$work/p"
mv "$work/p" "$d/play.m3u8"
rm "$d/seg_000.ts"

# recut-*: the segments of ts-h264-aac/hi (recut-apple-hevc: of ts-hevc-aac) with their PES
# cut elsewhere than on access units, as real packagers do (internal/tsrecut: same
# elementary streams and timestamps; "fixed": every 1000 / 300 bytes of video / audio,
# "apple": each video PES starts with the tail of the previous frame and audio PES end
# mid-ADTS-frame, "random": seeded sizes, some PES inside a start code or ADTS header).
# source.m3u8 lists the aligned segments they were made from.
recut() { # recut NAME PATTERN SOURCE-DIR (relative to streams/; its playlist is index.m3u8 or play.m3u8)
	local d="$out/$1" list
	mkdir -p "$d"
	list="$out/$3/index.m3u8"
	[ -f "$list" ] || list="$out/$3/play.m3u8"
	for f in "$out/$3"/seg_*.ts; do
		"$tsrecut" -pattern "$2" "$f" "$d/$(basename "$f")"
	done
	cp "$list" "$d/play.m3u8"
	sed "s#^seg_#../$3/seg_#" "$list" > "$d/source.m3u8"
}
recut recut-fixed-h264 fixed ts-h264-aac/hi
recut recut-apple-h264 apple ts-h264-aac/hi
recut recut-random-h264 random ts-h264-aac/hi
recut recut-apple-hevc apple ts-hevc-aac

# empty-audio-pid: the segments of video-only with a PMT that also declares an AAC stream
# (type 0x0f, PID 0x101) that never has a packet. source.m3u8: video-only's segments.
d="$out/empty-audio-pid"
mkdir -p "$d"
for f in "$out"/video-only/seg_*.ts; do
	"$tsrecut" -declare 0x0f:0x101 "$f" "$d/$(basename "$f")"
done
cp "$out/video-only/play.m3u8" "$d/play.m3u8"
sed 's#^seg_#../video-only/seg_#' "$out/video-only/play.m3u8" > "$d/source.m3u8"

# repeated-segments: seg_000 seg_001 seg_002 seg_001 seg_002 of ts-h264-aac/hi, without
# EXT-X-DISCONTINUITY: the timestamps jump back 2 s at the fourth. reference.ffconcat is the
# continuous timeline players make of it: the three, then the last two where the first
# three's packets end.
d="$out/repeated-segments"
mkdir -p "$d"
hi=../ts-h264-aac/hi/
media_playlist "$hi" seg_000.ts seg_001.ts seg_002.ts seg_001.ts seg_002.ts > "$d/play.m3u8"
media_playlist "$hi" seg_000.ts seg_001.ts seg_002.ts > "$d/part-a.m3u8"
media_playlist "$hi" seg_001.ts seg_002.ts > "$d/part-b.m3u8"
printf 'ffconcat version 1.0\nfile part-a.m3u8\nduration %s\nfile part-b.m3u8\n' "$(packet_span "$d/part-a.m3u8")" > "$d/reference.ffconcat"

# stitched-forward: two encodes (a/: PTS from 1.4 s; b/: other picture and tone, PTS from
# 1001.4 s) joined WITHOUT a discontinuity tag, an ad stitched in without tags.
# reference.ffconcat: the two parts on one continuous timeline, as for discontinuity.
d="$out/stitched-forward"
encode "$d/a" $(video_in 2) $(audio_in 2) "${x264[@]}" "${aac[@]}" "${bitexact[@]}" "${hls[@]}" -hls_segment_filename 'seg_%03d.ts' index.m3u8
encode "$d/b" -f lavfi -i "smptehdbars=size=160x90:rate=25:duration=2" -f lavfi -i "sine=frequency=660:sample_rate=48000:duration=2" \
	"${x264[@]}" "${aac[@]}" "${bitexact[@]}" -output_ts_offset 1000 "${hls[@]}" -hls_segment_filename 'seg_%03d.ts' index.m3u8
{
	sed -n '1,/^#EXT-X-PLAYLIST-TYPE/p' "$d/a/index.m3u8"
	grep -v '^#EXT-X-ENDLIST' "$d/a/index.m3u8" | sed -n '/^#EXTINF/,$p' | sed 's#^seg_#a/seg_#'
	sed -n '/^#EXTINF/,$p' "$d/b/index.m3u8" | sed 's#^seg_#b/seg_#'
} > "$d/play.m3u8"
printf 'ffconcat version 1.0\nfile a/index.m3u8\nduration %s\nfile b/index.m3u8\n' "$(packet_span "$d/a/index.m3u8")" > "$d/reference.ffconcat"

# iframes_playlist: an EXT-X-I-FRAMES-ONLY playlist over ts-h264-aac/hi's segments (from a
# folder beside it): one I-frame per segment, its byte range from the keyframe's first
# packet to the next video packet (approximate, as such playlists are).
iframes_playlist() {
	printf '#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-I-FRAMES-ONLY\n'
	for f in "$out"/ts-h264-aac/hi/seg_*.ts; do
		ffprobe -v error -select_streams v:0 -show_entries packet=pos,flags -of csv=p=0 "$f" |
			awk -F, -v uri="../ts-h264-aac/hi/$(basename "$f")" '
				NF < 2 { next }
				start != "" { printf "#EXTINF:1.000000,\n#EXT-X-BYTERANGE:%d@%d\n%s\n", $1 - start, start, uri; exit }
				$2 ~ /^K/ { start = $1 }'
	done
	printf '#EXT-X-ENDLIST\n'
}

# playlist-spellings: a master and a media playlist over ts-h264-aac/hi's segments, written
# as some origins do: UTF-8 BOM, CRLF, "#EXT-X-VERSION: 3", trailing tabs and spaces (on a
# URI too), attributes in an unusual order, no final newline, and an I-frame stream
# (EXT-X-I-FRAME-STREAM-INF, iframes.m3u8) with a higher BANDWIDTH than the one variant.
d="$out/playlist-spellings"
mkdir -p "$d"
iframes_playlist > "$d/iframes.m3u8"
printf '\xef\xbb\xbf#EXTM3U\r\n#EXT-X-VERSION: 3 \r\n#EXT-X-INDEPENDENT-SEGMENTS\t\r\n\r\n%s\r\n%s\r\n%s' \
	'#EXT-X-I-FRAME-STREAM-INF:URI="iframes.m3u8",CODECS="avc1.64000c",RESOLUTION=160x90,BANDWIDTH=400000' \
	'#EXT-X-STREAM-INF:CODECS="avc1.64000c,mp4a.40.2",FRAME-RATE=25.000,RESOLUTION=160x90,AVERAGE-BANDWIDTH=110000,BANDWIDTH=130000 	' \
	'media.m3u8' > "$d/play.m3u8"
printf '\xef\xbb\xbf#EXTM3U\r\n#EXT-X-TARGETDURATION:1\t\r\n#EXT-X-VERSION: 3\r\n#EXT-X-PLAYLIST-TYPE:VOD  \r\n#EXT-X-MEDIA-SEQUENCE:0\r\n%s' \
	'#EXTINF:1.000000,	'$'\r\n''../ts-h264-aac/hi/seg_000.ts  '$'\r\n''#EXTINF:1.0,'$'\r\n''../ts-h264-aac/hi/seg_001.ts'$'\r\n''#EXTINF:1,a title with spaces '$'\r\n''../ts-h264-aac/hi/seg_002.ts'$'\r\n''#EXT-X-ENDLIST' > "$d/media.m3u8"

# --- other audio codecs, AV1, packed audio (issue 11) ----------------------------------------

# ts-ac3, ts-eac3: H.264 + AC-3 / E-AC-3 5.1 in TS as ATSC (System A) has them: stream types
# 0x81 / 0x87 with a registration descriptor ("AC-3" / "EAC3"). ts-ac3-dvb, ts-eac3-dvb: the
# same bytes but for the PMT, as DVB (System B) has them: stream type 0x06 (PES private data)
# with the registration descriptor and an AC-3 (0x6a) / enhanced AC-3 (0x7a) descriptor.
ts_segments "$out/ts-ac3" "" $(video_in) $(audio_in) "${x264s[@]}" "${ac3[@]}" "${bitexact[@]}"
ts_segments "$out/ts-ac3-dvb" mpegts_flags=system_b $(video_in) $(audio_in) "${x264s[@]}" "${ac3[@]}" "${bitexact[@]}"
ts_segments "$out/ts-eac3" "" $(video_in) $(audio_in) "${x264s[@]}" "${eac3[@]}" "${bitexact[@]}"
ts_segments "$out/ts-eac3-dvb" mpegts_flags=system_b $(video_in) $(audio_in) "${x264s[@]}" "${eac3[@]}" "${bitexact[@]}"

# ts-mp3 (was mp3-audio, refused before issue 11): H.264 + MP3 in TS (stream type 0x03).
encode "$out/ts-mp3" $(video_in) $(audio_in) "${x264[@]}" -c:a libmp3lame -b:a 32k -ac 2 "${bitexact[@]}" "${hls[@]}" -hls_segment_filename 'seg_%03d.ts' play.m3u8
# ts-mp2: H.264 + MPEG-1 layer II at 48 kHz (0x03). ts-mp3-lsf: audio only, MP3 at
# 22.05 kHz, an MPEG-2 (LSF) layer III stream (0x04; object type 0x69 in the MP4).
encode "$out/ts-mp2" $(video_in) $(audio_in) "${x264s[@]}" -c:a mp2 -b:a 32k -ac 2 "${bitexact[@]}" "${hls[@]}" -hls_segment_filename 'seg_%03d.ts' play.m3u8
encode "$out/ts-mp3-lsf" $(audio_in) -c:a libmp3lame -b:a 24k -ar 22050 -ac 2 "${bitexact[@]}" "${hls[@]}" -hls_segment_filename 'seg_%03d.ts' play.m3u8

# ts-opus: H.264 + Opus stereo in TS; ts-opus-51: audio only, Opus 5.1 (channel mapping
# family 1). Stream type 0x06 with an "Opus" registration descriptor and a DVB extension
# descriptor (0x7f, tag 0x80) giving the channel configuration; each packet has the Opus
# control header, the first with a start trim (the pre-skip), the last with an end trim.
encode "$out/ts-opus" $(video_in) $(audio_in) "${x264s[@]}" "${opus[@]}" "${bitexact[@]}" "${hls[@]}" -hls_segment_filename 'seg_%03d.ts' play.m3u8
encode "$out/ts-opus-51" $(audio_in) -c:a libopus -b:a 48k -ac 6 "${bitexact[@]}" "${hls[@]}" -hls_segment_filename 'seg_%03d.ts' play.m3u8

# fmp4-ac3, fmp4-eac3, fmp4-mp3, fmp4-opus: H.264 + that audio in fMP4 (ac-3 with dac3,
# ec-3 with dec3, mp4a with an esds of object type 0x6b, Opus with dOps); fmp4-av1: AV1
# (libaom, single-threaded: deterministic) + AAC.
fmp4=(-hls_segment_type fmp4 -hls_segment_filename 'seg_%03d.m4s' play.m3u8)
encode "$out/fmp4-ac3" $(video_in) $(audio_in) "${x264s[@]}" "${ac3[@]}" "${bitexact[@]}" "${hls[@]}" "${fmp4[@]}"
encode "$out/fmp4-eac3" $(video_in) $(audio_in) "${x264s[@]}" "${eac3[@]}" "${bitexact[@]}" "${hls[@]}" "${fmp4[@]}"
encode "$out/fmp4-mp3" $(video_in) $(audio_in) "${x264s[@]}" "${mp3[@]}" "${bitexact[@]}" "${hls[@]}" "${fmp4[@]}"
encode "$out/fmp4-opus" $(video_in) $(audio_in) "${x264s[@]}" "${opus[@]}" "${bitexact[@]}" "${hls[@]}" "${fmp4[@]}"
encode "$out/fmp4-av1" $(video_in) $(audio_in) -c:v libaom-av1 -cpu-used 8 -row-mt 0 -b:v 30k -g 25 -keyint_min 25 -pix_fmt yuv420p \
	"${aac[@]}" "${bitexact[@]}" "${hls[@]}" "${fmp4[@]}"

# packed-*: packed audio (RFC 8216 §3.4): raw ADTS, AC-3, E-AC-3 or MP3 frames, each segment
# starting with an ID3 tag whose PRIV frame holds the 90 kHz timestamp of its first frame
# (internal/packedaudio: about 1 s of whole frames per segment, from 1.4 s, exact EXTINF).
# reference.ffconcat lists the same segments with their durations, the reference to compare
# with: ffmpeg's HLS reader gets packed-audio times wrong when it reads ahead across such
# small segments (it applies a later segment's tag to earlier frames), and will not read
# .ec3 segments (its E-AC-3 reader claims .eac3 only).
es() { # es NAME FORMAT ARGS…: an elementary stream file by ffmpeg, no tags or Xing header
	local name="$1" format="$2"; shift 2
	"${ff[@]}" $(audio_in) "$@" "${bitexact[@]}" -f "$format" "$work/$name"
}
es aac.aac adts "${aac[@]}"
es ac3.ac3 ac3 "${ac3[@]}"
es eac3.eac3 eac3 "${eac3[@]}"
es mp3.mp3 mp3 "${mp3[@]}" -id3v2_version 0 -write_xing 0
for e in aac ac3 eac3 mp3; do
	"$packedaudio" -reference reference.ffconcat "$work/$e.$e" "$out/packed-$e"
done
# packed-misnamed: packed AAC named seg_000.ts … (players detect it by its content).
"$packedaudio" -name 'seg_%03d.ts' -reference reference.ffconcat "$work/aac.aac" "$out/packed-misnamed"

# packed-rendition: a master whose variant (video.m3u8: video-only's H.264 TS segments, by
# ../ URIs) takes its audio from a packed-AAC EXT-X-MEDIA rendition (audio.m3u8), its
# timestamps where ffmpeg's TS muxer puts the same audio beside the same video: the source is
# ts-h264-aac/hi (the same video and AAC frames, checked here, the same times).
d="$out/packed-rendition"
hi_audio_start="$(ffprobe -v error -select_streams a:0 -show_entries stream=start_pts -of csv=p=0 "$out/ts-h264-aac/hi/index.m3u8" | head -n 1)"
"$packedaudio" -start "$hi_audio_start" -playlist audio.m3u8 "$work/aac.aac" "$d"
media_playlist ../video-only/ seg_000.ts seg_001.ts seg_002.ts > "$d/video.m3u8"
cat > "$d/play.m3u8" <<'M3U8'
#EXTM3U
#EXT-X-VERSION:3
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="main",DEFAULT=YES,AUTOSELECT=YES,URI="audio.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=110000,RESOLUTION=160x90,CODECS="avc1.64000c,mp4a.40.2",AUDIO="aud"
video.m3u8
M3U8
same_es() { # same_es A B MAP FORMAT: the elementary streams MAP of A and B are the same bytes
	"${ff[@]}" -i "$1" -map "$3" -c copy -f "$4" "$work/es_a" && "${ff[@]}" -i "$2" -map "$3" -c copy -f "$4" "$work/es_b"
	cmp -s "$work/es_a" "$work/es_b" || { echo "make.sh: $1 and $2 differ in $3" >&2; exit 1; }
}
same_es "$out/ts-h264-aac/hi/index.m3u8" "$work/aac.aac" 0:a adts
same_es "$out/ts-h264-aac/hi/index.m3u8" "$d/video.m3u8" 0:v h264

# --- unsupported flavours: the module must answer an error, never a file ------------------

# sample-aes: SAMPLE-AES around the (plain) segments of another flavour.
d="$out/sample-aes"
mkdir -p "$d"
{
	printf '#EXTM3U\n#EXT-X-VERSION:5\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n'
	printf '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://key-1",KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1"\n'
	sed -n '/^#EXTINF/,$p' "$out/ts-h264-aac/hi/index.m3u8" | sed 's#^seg_#../ts-h264-aac/hi/seg_#'
} > "$d/play.m3u8"

# mpeg2-video: MPEG-2 video + AAC in TS.
encode "$out/mpeg2-video" $(video_in) $(audio_in) -c:v mpeg2video -b:v 100k -bf 2 -g 25 "${aac[@]}" "${bitexact[@]}" "${hls[@]}" -hls_segment_filename 'seg_%03d.ts' play.m3u8

# ts-dts: H.264 + DTS in TS (stream type 0x82). ffmpeg's DTS encoder is experimental and
# takes nothing below 144 kb/s for one channel at 48 kHz (320 kb/s for two).
encode "$out/ts-dts" $(video_in) $(audio_in) "${x264s[@]}" -c:a dca -strict -2 -b:a 144k -ac 1 "${bitexact[@]}" "${hls[@]}" -hls_segment_filename 'seg_%03d.ts' play.m3u8

# ts-latm: H.264 + AAC in LATM/LOAS (stream type 0x11), by the mpegts muxer's latm flag.
ts_segments "$out/ts-latm" mpegts_flags=latm $(video_in) $(audio_in) "${x264s[@]}" "${aac[@]}" "${bitexact[@]}"

# live: a media playlist without EXT-X-ENDLIST (POST answers 409).
d="$out/live"
mkdir -p "$d"
{
	printf '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n'
	sed -n '/^#EXTINF/,$p' "$out/video-only/play.m3u8" | grep -v '^#EXT-X-ENDLIST' | sed 's#^seg_#../video-only/seg_#'
} > "$d/play.m3u8"

# iframes-only: play.m3u8 is an I-frames-only playlist (EXT-X-I-FRAMES-ONLY), no media to
# package as a video.
d="$out/iframes-only"
mkdir -p "$d"
iframes_playlist > "$d/play.m3u8"

# lost-packets: ts-h264-aac/hi with 3 TS packets taken out of the middle of seg_001's
# largest video PES (its keyframe): the continuity counter jumps, no discontinuity indicator.
# The other segments are ts-h264-aac/hi's own.
d="$out/lost-packets"
mkdir -p "$d"
"$tsrecut" -lose 3 "$out/ts-h264-aac/hi/seg_001.ts" "$d/seg_001.ts"
sed 's#^seg_00\([02]\)#../ts-h264-aac/hi/seg_00\1#' "$out/ts-h264-aac/hi/index.m3u8" > "$d/play.m3u8"

# short-segment: as lost-packets, but seg_001 keeps only the PES that begin in its first
# half (a well-formed segment with half a second of media) while the playlist still says
# 1.000000.
d="$out/short-segment"
mkdir -p "$d"
"$tsrecut" -keep 0.5 "$out/ts-h264-aac/hi/seg_001.ts" "$d/seg_001.ts"
cp "$out/lost-packets/play.m3u8" "$d/play.m3u8"

# multi-language (issue 17): a master whose variant (packed-rendition's video) has an AUDIO
# group of three renditions (French the DEFAULT one; the same packed AAC under three URLs),
# a SUBTITLES group of two WebVTT languages whose X-TIMESTAMP-MAP puts LOCAL 0 at the
# video's first PTS (133200) for English and a second later for French, plus an English
# SDH rendition, and Apple chapters in English and French.
d="$out/multi-language"
mkdir -p "$d/subs/en" "$d/subs/fr"
cat > "$d/play.m3u8" <<'M3U8'
#EXTM3U
#EXT-X-VERSION:3
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",LANGUAGE="en",DEFAULT=NO,AUTOSELECT=YES,URI="../packed-rendition/audio.m3u8?en"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="Français",LANGUAGE="fr",DEFAULT=YES,AUTOSELECT=YES,URI="../packed-rendition/audio.m3u8?fr"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="Português (Brasil)",LANGUAGE="pt-BR",URI="../packed-rendition/audio.m3u8?pt"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,URI="subs/en.m3u8"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="Français",LANGUAGE="fr",URI="subs/fr.m3u8"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English (SDH)",LANGUAGE="en",URI="subs/en.m3u8?sdh"
#EXT-X-SESSION-DATA:DATA-ID="com.apple.hls.chapters",URI="chapters.json"
#EXT-X-STREAM-INF:BANDWIDTH=110000,RESOLUTION=160x90,CODECS="avc1.64000c,mp4a.40.2",AUDIO="aud",SUBTITLES="subs"
../packed-rendition/video.m3u8
M3U8
cat > "$d/chapters.json" <<'JSON'
[
 {"chapter": 1, "start-time": 0, "duration": 1.2, "titles": [{"language": "en", "title": "Opening"}, {"language": "fr", "title": "Ouverture"}]},
 {"chapter": 2, "start-time": 1.2, "duration": 1.8, "titles": [{"language": "en", "title": "The end"}, {"language": "fr", "title": "La fin"}]}
]
JSON
for lang in en fr; do
	mpegts=133200
	[ "$lang" = fr ] && mpegts=$((133200 + 90000))
	printf '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-PLAYLIST-TYPE:VOD\n' > "$d/subs/$lang.m3u8"
	for i in 0 1 2; do
		printf '#EXTINF:1.0,\n%s/%d.vtt\n' "$lang" "$i" >> "$d/subs/$lang.m3u8"
	done
	echo '#EXT-X-ENDLIST' >> "$d/subs/$lang.m3u8"
	# A cue that spans a segment boundary is repeated in the next segment, as segmenters do.
	printf 'WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:%d,LOCAL:00:00:00.000\n\n00:00:00.500 --> 00:00:01.500\nHello <i>there</i>\n' "$mpegts" > "$d/subs/$lang/0.vtt"
	printf 'WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:%d,LOCAL:00:00:00.000\n\n00:00:01.800 --> 00:00:02.500\nSecond line\nin two rows\n\n00:00:00.500 --> 00:00:01.500\nHello <i>there</i>\n' "$mpegts" > "$d/subs/$lang/1.vtt"
	printf 'WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:%d,LOCAL:00:00:00.000\n\n\n00:00:01.800 --> 00:00:02.500\nSecond line\nin two rows\n' "$mpegts" > "$d/subs/$lang/2.vtt"
done

# --- check or install -----------------------------------------------------------------------

(cd "$out" && find . -type f | sort | xargs sha256sum) > "$work/SHA256SUMS"
if [ "$check" = 1 ]; then
	if diff -u "$here/SHA256SUMS" "$work/SHA256SUMS"; then
		echo "make.sh --check: streams/ is what make.sh makes ($(wc -l < "$work/SHA256SUMS") files)"
	else
		echo "make.sh --check: streams/ differs from what make.sh makes (see above)" >&2
		exit 1
	fi
	exit 0
fi
rm -rf "$here/streams"
mv "$out" "$here/streams"
mv "$work/SHA256SUMS" "$here/SHA256SUMS"
echo "wrote $(wc -l < "$here/SHA256SUMS") files, $(du -sh "$here/streams" | cut -f1) in $here/streams"
