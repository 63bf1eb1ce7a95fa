#!/usr/bin/env bash
# Side-by-side comparisons for the performance targets (issue 6), each run RUNS times,
# printed as a table of medians and ratios. Inputs come from bench/make-inputs.sh.
#
#   packaging: POST→ready of the module vs `ffmpeg -c copy -movflags +faststart`, from an
#              origin on loopback (Caddy file_server) and from the shaped origin
#              (bench/shapedorigin: +DELAY per response, MBPS per connection);
#   memory:    peak RSS (VmHWM) of a fresh Caddy packaging the 10- and 60-minute videos;
#   writes:    bytes the Caddy process wrote to disk per output byte;
#   delivery:  wrk (64 connections) on the whole file and on 1 MiB ranges, module vs
#              file_server on the same file, plain and with a signed token;
#   fleet:     three instances sharing a bucket (versitygw) vs one without: time to ready,
#              origin requests per segment, the holder's local disk traffic;
#   instant:   fMP4 downloads served while packaged (issue 16), through the shaped origin: an
#              on-demand GET of a never-created download vs POST → ready → GET (first byte,
#              whole file), byte identity and ETag, a 1 MiB Range at 3/4 during packaging,
#              peak RSS with 20 clients of one in-progress download.
#
# Needs ffmpeg, curl, wrk (apt-get install wrk), versitygw for the fleet (go install
# github.com/versity/versitygw/cmd/versitygw@v1.8.0). Ports 18080-18094 on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DELAY=${DELAY:-40ms}
MBPS=${MBPS:-50}
WRK_SECONDS=${WRK_SECONDS:-10}
VIDEOS=${VIDEOS:-"ts10 fmp410"}
LONG=${LONG:-"ts60"}
INSTANT=${INSTANT:-"fmp410 fmp460"} # fMP4 videos of the instant part; the last one also gets the clients
CLIENTS=${CLIENTS:-20}
PARTS=${PARTS:-"loopback shaped memory delivery fleet instant"} # which comparisons to run
has() { [[ " $PARTS " == *" $1 "* ]]; }
data=bench/data
work=bench/work
bin=bench/bin
rm -rf "$work" && mkdir -p "$work" "$bin"
for v in $VIDEOS $LONG $(has instant && echo "$INSTANT"); do
	[ -f "$data/$v/index.m3u8" ] || { echo "missing $data/$v: run bench/make-inputs.sh first" >&2; exit 1; }
done
go build -o "$bin/caddy" ./cmd/caddy
go build -o "$bin/shapedorigin" ./bench/shapedorigin

pids=()
node_pids=()
edge_pid=
cleanup() { for p in "${pids[@]}" "${node_pids[@]}" $edge_pid; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_port() { for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return; sleep 0.1; done; echo "port $1 did not open" >&2; exit 1; }
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%d", k/1024}'; } # KiB → MiB

# Origins: loopback file_server on 18090, shaped origin on 18091.
cat > "$work/origin.Caddyfile" <<CADDY
{
	admin off
	auto_https off
	log {
		output discard
	}
}
http://127.0.0.1:18090 {
	bind 127.0.0.1
	root * $PWD/$data
	file_server
}
CADDY
"$bin/caddy" run --config "$work/origin.Caddyfile" --adapter caddyfile >"$work/origin.log" 2>&1 &
pids+=($!)
"$bin/shapedorigin" -listen 127.0.0.1:18091 -dir "$data" -delay "$DELAY" -mbps "$MBPS" >"$work/shaped.log" 2>&1 &
pids+=($!)
shaped_pid=$!
wait_port 18090
wait_port 18091

# A signing key for the signed-delivery run.
"$bin/caddy" stream-downloads keygen --type ed25519 >"$work/key.txt"
kid=$(awk '/^kid:/ {print $2}' "$work/key.txt")
awk '/BEGIN PRIVATE KEY/,/END PRIVATE KEY/' "$work/key.txt" >"$work/key.pem"

# start_edge <origin port> <storage dir> [directive]: a fresh Caddy with the module on
# 18080 (and the extra stream_downloads directive, if any) and a file_server of its
# storage on 18092; sets edge_pid.
start_edge() {
	cat > "$work/edge.Caddyfile" <<CADDY
{
	admin off
	auto_https off
	log {
		output file $PWD/$work/edge.log
	}
}
http://127.0.0.1:18080 {
	bind 127.0.0.1
	stream_downloads {
		origin http://127.0.0.1:$1/{video_id}/index.m3u8
		api_token bench
		storage_dir $2
		signing_key $kid $PWD/$work/key.pem
		${3:-}
	}
}
http://127.0.0.1:18092 {
	bind 127.0.0.1
	root * $2
	file_server
}
CADDY
	"$bin/caddy" run --config "$work/edge.Caddyfile" --adapter caddyfile >"$work/edge.out" 2>&1 &
	edge_pid=$!
	wait_port 18080
}
stop_edge() { # SIGTERM, then SIGKILL if Caddy has not exited within 10 s (said on stderr)
	kill "$edge_pid" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$edge_pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$edge_pid" 2>/dev/null; then
		echo "edge Caddy did not stop on SIGTERM within 10 s; killing it" >&2
		kill -9 "$edge_pid"
	fi
	wait "$edge_pid" 2>/dev/null || true
}

# package <video> <origin port>: POST and poll until ready on a fresh edge; prints
# "seconds peak_rss_kib written_bytes output_bytes".
package() {
	local store="$PWD/$work/store-$1-$2"
	rm -rf "$store"
	start_edge "$2" "$store"
	local t0 t1 status
	sync # neither side pays for the other's write-back
	t0=$(now)
	curl -sf -X POST -H 'Authorization: Bearer bench' "http://127.0.0.1:18080/b/stream/$1/downloads" >/dev/null
	while :; do
		status=$(curl -sf -H 'Authorization: Bearer bench' "http://127.0.0.1:18080/b/stream/$1/downloads" | grep -o '"status":"[a-z]*"')
		[ "$status" = '"status":"inprogress"' ] || break
		sleep 0.05
	done
	t1=$(now)
	[ "$status" = '"status":"ready"' ] || { echo "packaging $1 ended $status" >&2; cat "$work/edge.log" >&2; exit 1; }
	local rss wb size
	rss=$(awk '/VmHWM/ {print $2}' "/proc/$edge_pid/status")
	wb=$(awk '/^write_bytes/ {print $2}' "/proc/$edge_pid/io")
	size=$(stat -c %s "$store/$1/default.mp4")
	stop_edge
	echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b-a}') $rss $wb $size"
}

# ffmpeg_time <video> <origin port>: seconds of ffmpeg's remux to a faststart MP4.
ffmpeg_time() {
	local t0 t1
	sync
	t0=$(now)
	ffmpeg -hide_banner -loglevel error -y -i "http://127.0.0.1:$2/$1/index.m3u8" -c copy -movflags +faststart "$work/ffmpeg.mp4"
	t1=$(now)
	awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b-a}'
}

rows=()
row() { rows+=("$(printf '| %s | %s | %s | %s | %s |' "$@")"); }

for origin in 18090 18091; do
	where=loopback
	[ $origin = 18091 ] && where="shaped (+$DELAY, $MBPS Mb/s per connection)"
	has "${where%% *}" || continue
	for v in $VIDEOS; do
		ours=() theirs=()
		for _ in $(seq "$RUNS"); do
			read -r secs _ _ _ < <(package "$v" $origin)
			ours+=("$secs")
			theirs+=("$(ffmpeg_time "$v" $origin)")
		done
		m1=$(printf '%s\n' "${ours[@]}" | median)
		m2=$(printf '%s\n' "${theirs[@]}" | median)
		row "packaging $v, $where" "${m1} s" "ffmpeg ${m2} s" "$(ratio "$m1" "$m2")" "≤ $([ $origin = 18090 ] && echo 0.8 || echo 0.25)"
	done
done

# Memory and bytes written, 10- vs 60-minute video (loopback origin): medians of RUNS
# fresh Caddy processes each. mem <video>: "peak_rss_kib written_per_output_byte".
mem() {
	local rss=() wpb=() r wb size
	for _ in $(seq "$RUNS"); do
		read -r _ r wb size < <(package "$1" 18090)
		rss+=("$r")
		wpb+=("$(awk -v a="$wb" -v b="$size" 'BEGIN {printf "%.3f", a/b}')")
	done
	echo "$(printf '%s\n' "${rss[@]}" | median) $(printf '%s\n' "${wpb[@]}" | median)"
}
short=${VIDEOS%% *}
has memory && read -r rss_s wpb_s < <(mem "$short")
has memory && for v in $LONG; do
	read -r rss_l wpb_l < <(mem "$v")
	row "peak RSS packaging $short / $v" "$(mib "$rss_s") MiB / $(mib "$rss_l") MiB" "" "$(ratio "$rss_l" "$rss_s")" "≤ 100 MiB; ≤ 1.2"
	row "bytes written per output byte ($short / $v)" "$(printf '%.2f' "$wpb_s") / $(printf '%.2f' "$wpb_l")" "" "" "≤ 1.1"
done

# Delivery: module vs file_server on the same file, with wrk.
has delivery && {
store="$PWD/$work/store-deliver"
rm -rf "$store"
start_edge 18090 "$store"
curl -sf -X POST -H 'Authorization: Bearer bench' "http://127.0.0.1:18080/b/stream/$short/downloads" >/dev/null
until curl -sf -o /dev/null "http://127.0.0.1:18080/$short/downloads/default.mp4"; do sleep 0.2; done
token=$("$bin/caddy" stream-downloads sign --key "$work/key.pem" --kid "$kid" --video "$short" --expires 1h)
cat > "$work/range.lua" <<'LUA'
wrk.headers["Range"] = "bytes=0-1048575"
LUA
wrk_rate() { # <url> [range]: "requests/s MB/s"
	local script=()
	[ "${2:-}" = range ] && script=(-s "$work/range.lua")
	wrk -t2 -c64 -d"${WRK_SECONDS}s" "${script[@]}" "$1" | awk '
		/^Requests\/sec/ {r=$2}
		/^Transfer\/sec/ {v=$2; if (v ~ /GB/) v*=1024; else if (v ~ /KB/) v/=1024; else v+=0; t=v}
		END {printf "%.2f %.1f\n", r, t}'
}
# A whole file takes each connection longer than the run, so few requests complete
# within it: whole-file requests/s are the transfer rate divided by the file's size.
mib=$(awk -v b="$(stat -c %s "$store/$short/default.mp4")" 'BEGIN {print b/1048576}')
per_file() { awk -v r="$1" -v m="$mib" 'BEGIN {printf "%.2f", r/m}'; }
# wrk_median <url> <kind>: medians of RUNS wrk runs, "requests/s MB/s".
wrk_median() {
	local rs=() ms=() r m
	for _ in $(seq "$RUNS"); do
		read -r r m < <(wrk_rate "$1" "$2")
		rs+=("$r") ms+=("$m")
	done
	echo "$(printf '%s\n' "${rs[@]}" | median) $(printf '%s\n' "${ms[@]}" | median)"
}
for kind in whole range; do
	read -r fr fm < <(wrk_median "http://127.0.0.1:18092/$short/default.mp4" $kind)
	read -r mr mm < <(wrk_median "http://127.0.0.1:18080/$short/downloads/default.mp4" $kind)
	read -r sr sm < <(wrk_median "http://127.0.0.1:18080/$token/downloads/default.mp4" $kind)
	if [ $kind = whole ]; then
		fr=$(per_file "$fm") mr=$(per_file "$mm") sr=$(per_file "$sm")
	fi
	row "delivery ($kind file), req/s" "$mr" "file_server $fr" "$(ratio "$mr" "$fr")" "≥ 0.9"
	row "delivery ($kind file), MB/s" "$mm" "file_server $fm" "$(ratio "$mm" "$fm")" "≥ 0.9"
	row "signed delivery ($kind file), req/s" "$sr" "file_server $fr" "$(ratio "$sr" "$fr")" "≥ 0.85"
	row "signed delivery ($kind file), MB/s" "$sm" "file_server $fm" "$(ratio "$sm" "$fm")" "≥ 0.85"
done
stop_edge
}

# Fleet: three instances sharing a bucket (a local versitygw on 18094) vs one instance
# without a bucket, packaging the 10-minute video from a counting origin on 18093. Rows:
# time from the POST on node 1 to ready as node 2 shows it, vs one local instance; the
# same with a fleet of one (what the bucket's path costs: the upload and the object
# writes); origin requests per segment; the holder's bytes written to and read from
# local disk per output byte.
has fleet && {
vgw=$(command -v versitygw || echo "$(go env GOPATH)/bin/versitygw")
[ -x "$vgw" ] || { echo "fleet: versitygw missing: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0" >&2; exit 1; }
rm -rf "$work/s3" && mkdir -p "$work/s3/bench" # a top-level folder is a bucket to versitygw's posix backend
ROOT_ACCESS_KEY=bench ROOT_SECRET_KEY=bench-secret "$vgw" --port 127.0.0.1:18094 --quiet posix "$PWD/$work/s3" >"$work/s3.log" 2>&1 &
pids+=($!)
cat > "$work/counting.Caddyfile" <<CADDY
{
	admin off
	auto_https off
}
http://127.0.0.1:18093 {
	bind 127.0.0.1
	root * $PWD/$data
	file_server
	log {
		output file $PWD/$work/origin-requests.log
		format json
	}
}
CADDY
"$bin/caddy" run --config "$work/counting.Caddyfile" --adapter caddyfile >"$work/counting.out" 2>&1 &
pids+=($!)
wait_port 18093
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:18094/" && break; sleep 0.1; done
# start_node <port> <storage dir> <name> <prefix>: an instance of the fleet.
start_node() {
	cat > "$work/node-$3.Caddyfile" <<CADDY
{
	admin off
	auto_https off
	log {
		output file $PWD/$work/node-$3.log
	}
}
http://127.0.0.1:$1 {
	bind 127.0.0.1
	stream_downloads {
		origin http://127.0.0.1:18093/{video_id}/index.m3u8
		api_token bench
		storage_dir $2
		store s3 {
			endpoint http://127.0.0.1:18094
			bucket bench
			prefix $4
			access_key bench
			secret_key bench-secret
			path_style
			node $3
		}
	}
}
CADDY
	"$bin/caddy" run --config "$work/node-$3.Caddyfile" --adapter caddyfile >"$work/node-$3.out" 2>&1 &
	node_pids+=($!)
	wait_port "$1"
}
stop_nodes() { for p in "${node_pids[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${node_pids[@]}"; do wait "$p" 2>/dev/null || true; done; node_pids=(); }
# fleet_run <nodes> <run>: POST on the first node, poll the last one; prints "seconds
# written_bytes read_bytes output_bytes" (bytes of the first node's process).
fleet_run() {
	local prefix="run$2-$1" port t0 t1 status
	for i in $(seq "$1"); do start_node $((18080 + i)) "$PWD/$work/fleet-$prefix-$i" "n$i" "$prefix"; done
	local last=$((18080 + $1))
	sync
	t0=$(now)
	curl -sf -X POST -H 'Authorization: Bearer bench' "http://127.0.0.1:18081/b/stream/$short/downloads" >/dev/null
	while :; do
		status=$(curl -s -H 'Authorization: Bearer bench' "http://127.0.0.1:$last/b/stream/$short/downloads" | grep -o '"status":"[a-z]*"' || true)
		[ "$status" = '"status":"inprogress"' ] || [ -z "$status" ] || break
		sleep 0.05
	done
	t1=$(now)
	[ "$status" = '"status":"ready"' ] || { echo "fleet packaging ended $status" >&2; cat "$work"/node-n*.log >&2; exit 1; }
	local wb rb size
	wb=$(awk '/^write_bytes/ {print $2}' "/proc/${node_pids[0]}/io")
	rb=$(awk '/^rchar/ {print $2}' "/proc/${node_pids[0]}/io")
	size=$(curl -sI "http://127.0.0.1:18081/$short/downloads/default.mp4" | awk 'tolower($1) == "content-length:" {print $2+0}')
	stop_nodes
	echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b-a}') $wb $rb $size"
}
# segment_bytes: bytes of segments the counting origin sent since its log was emptied.
segment_bytes() {
	grep "\"uri\":\"/$short/seg_" "$work/origin-requests.log" | grep -o '"size":[0-9]*' | awk -F: '{n += $2} END {print n+0}'
}
one=() three=() single=() wpb=() rpb=() fetched=() local_fetched=()
for r in $(seq "$RUNS"); do
	: >"$work/origin-requests.log"
	read -r secs _ _ _ < <(package "$short" 18093)
	single+=("$secs")
	local_fetched+=("$(segment_bytes)")
	read -r secs _ _ _ < <(fleet_run 1 "$r")
	one+=("$secs")
	: >"$work/origin-requests.log"
	read -r secs wb rb size < <(fleet_run 3 "$r")
	three+=("$secs")
	fetched+=("$(awk -v a="$(segment_bytes)" -v b="${local_fetched[-1]}" 'BEGIN {printf "%.2f", a/b}')")
	wpb+=("$(awk -v a="$wb" -v b="$size" 'BEGIN {printf "%.3f", a/b}')")
	rpb+=("$(awk -v a="$rb" -v b="$size" 'BEGIN {printf "%.3f", a/b}')")
done
m_single=$(printf '%s\n' "${single[@]}" | median)
m_one=$(printf '%s\n' "${one[@]}" | median)
m_three=$(printf '%s\n' "${three[@]}" | median)
row "fleet: time to ready, 3 nodes (POST on node 1, seen on node 3)" "$m_three s" "1 node, no bucket $m_single s" "$(ratio "$m_three" "$m_single")" ""
row "fleet: time to ready, 1 node with the bucket" "$m_one s" "1 node, no bucket $m_single s" "$(ratio "$m_one" "$m_single")" ""
row "fleet: segment bytes fetched from the origin, 3 nodes" "" "1 node, no bucket" "$(printf '%s\n' "${fetched[@]}" | median)" "1.00"
row "fleet: holder's bytes written / read (rchar) per output byte" "$(printf '%s\n' "${wpb[@]}" | median) / $(printf '%s\n' "${rpb[@]}" | median)" "" "" "written ≤ 1.1"
}

# Instant delivery (issue 16): fMP4 downloads through the shaped origin, each measurement on
# a fresh edge (fresh storage) with `on_demand 10m`. Instant: a GET of a download nobody
# created, to a file, its time to first byte and total time (curl's); then, once ready,
# the stored file GET again: same sha256, same ETag. Package-then-serve: POST, poll until
# ready, then GET; first byte and total counted from the POST. Range: after a POST (the
# job running), a HEAD for the length, then 1 MiB at 3/4 of the file, time to last byte;
# the same range once stored. Clients: CLIENTS curls of the last video right after a POST,
# to /dev/null; the edge's VmHWM once the download is ready. Origin bytes: what the shaped
# origin wrote (wchar) during a measurement, per byte of the file.
has instant && {
odm="on_demand 10m"
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b-a}'; }
origin_out() { awk '/^wchar/ {print $2}' "/proc/$shaped_pid/io"; }
per_byte() { awk -v a="$1" -v b="$2" -v s="$3" 'BEGIN {printf "%.2f", (b-a)/s}'; } # <before> <after> <size>
# instant_edge <storage dir>: a fresh edge with on_demand, from a function run in a
# subshell (< <(…)): stopped when that subshell exits, also on an error.
instant_edge() {
	! curl -s -o /dev/null "http://127.0.0.1:18080/" || { echo "instant: port 18080 is already in use" >&2; exit 1; }
	start_edge 18091 "$1" "$odm"
	trap 'kill "$edge_pid" 2>/dev/null || true' EXIT
}
fail() { echo "instant: $*" >&2; tail -20 "$work/edge.log" >&2 || true; exit 1; }
# wait_ready <video>: polls the API every 50 ms while the download is in progress.
wait_ready() {
	local status
	while :; do
		status=$(curl -s -H 'Authorization: Bearer bench' "http://127.0.0.1:18080/b/stream/$1/downloads" | grep -o '"status":"[a-z]*"' || true)
		[ "$status" = '"status":"inprogress"' ] || [ -z "$status" ] || break
		sleep 0.05
	done
	[ "$status" = '"status":"ready"' ] || fail "$1 ended $status"
}
etag_of() { awk 'tolower($1) == "etag:" {sub(/\r$/, "", $2); print $2}' "$1"; }
# instant_get <video>: prints "first_byte total plan_seconds same_body same_etag origin_per_byte".
instant_get() {
	local store="$PWD/$work/store-instant-$1" out="$work/instant-$1.mp4" url="http://127.0.0.1:18080/$1/downloads/default.mp4"
	rm -rf "$store" "$out"
	instant_edge "$store"
	sync
	local o0 first total code size
	o0=$(origin_out)
	read -r code first total size < <(curl -s -o "$out" -D "$work/instant-$1.headers" -w '%{http_code} %{time_starttransfer} %{time_total} %{size_download}\n' "$url")
	[ "$code" = 200 ] || fail "GET of $1 answered $code"
	wait_ready "$1"
	local o1 body=✗ etag=✗ plan
	o1=$(origin_out)
	[ "$(curl -sf -D "$work/stored-$1.headers" "$url" | sha256sum)" = "$(sha256sum <"$out")" ] && body=✓
	[ -n "$(etag_of "$work/instant-$1.headers")" ] && [ "$(etag_of "$work/instant-$1.headers")" = "$(etag_of "$work/stored-$1.headers")" ] && etag=✓
	plan=$(grep '"msg":"instant delivery planned"' "$work/edge.log" | grep "\"video\":\"$1\"" | tail -1 | grep -o '"seconds":[0-9.e-]*' | cut -d: -f2)
	stop_edge
	rm -rf "$store" "$out"
	echo "$(printf '%.3f %.3f' "$first" "$total") ${plan:-?} $body $etag $(per_byte "$o0" "$o1" "$size")"
}
# then_serve <video>: prints "first_byte total packaging origin_per_byte", seconds from the POST.
then_serve() {
	local store="$PWD/$work/store-then-$1" out="$work/then-$1.mp4"
	rm -rf "$store" "$out"
	instant_edge "$store"
	sync
	local o0 o1 t0 t1 first total size
	o0=$(origin_out)
	t0=$(now)
	curl -sf -X POST -H 'Authorization: Bearer bench' "http://127.0.0.1:18080/b/stream/$1/downloads" >/dev/null
	wait_ready "$1"
	t1=$(now)
	o1=$(origin_out)
	read -r first total size < <(curl -sf -o "$out" -w '%{time_starttransfer} %{time_total} %{size_download}\n' "http://127.0.0.1:18080/$1/downloads/default.mp4")
	stop_edge
	rm -rf "$store" "$out"
	awk -v a="$t0" -v b="$t1" -v f="$first" -v t="$total" -v o="$(per_byte "$o0" "$o1" "$size")" 'BEGIN {printf "%.3f %.3f %.3f %s\n", b-a+f, b-a+t, b-a, o}'
}
# range_read <video>: prints "head_seconds during_seconds stored_seconds same_bytes".
range_read() {
	local store="$PWD/$work/store-range-$1" url="http://127.0.0.1:18080/$1/downloads/default.mp4"
	rm -rf "$store"
	instant_edge "$store"
	sync
	curl -sf -X POST -H 'Authorization: Bearer bench' "http://127.0.0.1:18080/b/stream/$1/downloads" >/dev/null
	local head size x r during stored code status same=✗
	head=$(curl -sf -I -D "$work/range-$1.headers" -o /dev/null -w '%{time_total}' "$url")
	size=$(awk 'tolower($1) == "content-length:" {printf "%d", $2}' "$work/range-$1.headers")
	x=$((size * 3 / 4))
	r="bytes=$x-$((x + 1048575))"
	read -r code during < <(curl -s -H "Range: $r" -o "$work/range-during" -w '%{http_code} %{time_total}\n' "$url")
	status=$(curl -s -H 'Authorization: Bearer bench' "http://127.0.0.1:18080/b/stream/$1/downloads" | grep -o '"status":"[a-z]*"' || true)
	[ "$code" = 206 ] && [ "$status" = '"status":"inprogress"' ] || fail "range during packaging of $1: $code, then $status"
	wait_ready "$1"
	read -r code stored < <(curl -s -H "Range: $r" -o "$work/range-stored" -w '%{http_code} %{time_total}\n' "$url")
	[ "$code" = 206 ] && cmp -s "$work/range-during" "$work/range-stored" && [ "$(stat -c %s "$work/range-stored")" = 1048576 ] && same=✓
	stop_edge
	rm -rf "$store"
	printf '%.3f %.3f %.3f %s\n' "$head" "$during" "$stored" "$same"
}
# crowd <video>: prints "peak_rss_kib seconds_all_clients packaging_seconds complete_clients".
crowd() {
	local store="$PWD/$work/store-crowd-$1" url="http://127.0.0.1:18080/$1/downloads/default.mp4"
	rm -rf "$store"
	instant_edge "$store"
	sync
	local t0 t1 t2 cs=() i ok=0 size rss
	t0=$(now)
	curl -sf -X POST -H 'Authorization: Bearer bench' "http://127.0.0.1:18080/b/stream/$1/downloads" >/dev/null
	for i in $(seq "$CLIENTS"); do
		curl -s -o /dev/null -w '%{http_code} %{size_download}\n' "$url" >"$work/client-$i.out" &
		cs+=($!)
	done
	for i in "${cs[@]}"; do wait "$i" || true; done
	t1=$(now)
	wait_ready "$1"
	t2=$(now)
	size=$(stat -c %s "$store/$1/default.mp4")
	for i in $(seq "$CLIENTS"); do [ "$(cat "$work/client-$i.out")" = "200 $size" ] && ok=$((ok + 1)); done
	rss=$(awk '/VmHWM/ {print $2}' "/proc/$edge_pid/status")
	stop_edge
	rm -rf "$store"
	echo "$rss $(secs "$t0" "$t1") $(secs "$t0" "$t2") $ok"
}
declare -A i_first i_total i_plan i_body i_etag i_org t_first t_total t_pack t_org r_head r_during r_stored r_same
long=${INSTANT##* }
c_rss=() c_secs=() c_pack=() c_ok=()
for _ in $(seq "$RUNS"); do
	for v in $INSTANT; do
		read -r f t p b e o < <(instant_get "$v")
		[ -n "$o" ] || { echo "instant: a measurement failed" >&2; exit 1; }
		i_first[$v]+="$f " i_total[$v]+="$t " i_plan[$v]+="$p " i_body[$v]+="$b" i_etag[$v]+="$e" i_org[$v]+="$o "
		read -r f t p o < <(then_serve "$v")
		[ -n "$o" ] || { echo "instant: a measurement failed" >&2; exit 1; }
		t_first[$v]+="$f " t_total[$v]+="$t " t_pack[$v]+="$p " t_org[$v]+="$o "
		read -r h d s same < <(range_read "$v")
		[ -n "$same" ] || { echo "instant: a measurement failed" >&2; exit 1; }
		r_head[$v]+="$h " r_during[$v]+="$d " r_stored[$v]+="$s " r_same[$v]+="$same"
	done
	read -r rss s p ok < <(crowd "$long")
	[ -n "$ok" ] || { echo "instant: a measurement failed" >&2; exit 1; }
	c_rss+=("$rss") c_secs+=("$s") c_pack+=("$p") c_ok+=("$ok")
done
med() { printf '%s\n' $1 | median; } # median of a space-separated list
all() { [[ "$1" != *✗* ]] && echo ✓ || echo "✗ ($1)"; } # ✓ when every run gave ✓
for v in $INSTANT; do
	fb=$(med "${i_first[$v]}") tfb=$(med "${t_first[$v]}")
	tot=$(med "${i_total[$v]}") ttot=$(med "${t_total[$v]}") pack=$(med "${t_pack[$v]}")
	row "instant $v: first byte, on-demand GET (plan $(printf '%.2f' "$(med "${i_plan[$v]}")") s)" "$fb s" "package-then-serve $tfb s" "$(ratio "$fb" "$tfb")" "≤ $([ "$v" != "$long" ] && echo 1 || echo 3) s"
	row "instant $v: whole file, on-demand GET" "$tot s" "packaging (POST→ready) $pack s, +GET $ttot s" "$(ratio "$tot" "$pack")" "≤ 1.10"
	row "instant $v: body sha256 / ETag = the stored file's" "$(all "${i_body[$v]}") / $(all "${i_etag[$v]}")" "" "" "✓ / ✓"
	row "instant $v: 1 MiB Range at 3/4 during packaging (HEAD $(med "${r_head[$v]}") s)" "$(med "${r_during[$v]}") s" "stored $(med "${r_stored[$v]}") s" "$(ratio "$(med "${r_during[$v]}")" "$(med "${r_stored[$v]}")")" "same bytes $(all "${r_same[$v]}")"
	row "instant $v: origin bytes per file byte" "$(med "${i_org[$v]}")" "package-then-serve $(med "${t_org[$v]}")" "" ""
done
rss=$(printf '%s\n' "${c_rss[@]}" | median)
row "instant $long: peak RSS, $CLIENTS clients of the download in progress" "$(mib "$rss") MiB" "" "" "≤ 150 MiB"
cs=$(printf '%s\n' "${c_secs[@]}" | median) cp=$(printf '%s\n' "${c_pack[@]}" | median)
row "instant $long: $CLIENTS clients' total time (all complete: $(printf '%s\n' "${c_ok[@]}" | sort -g | head -1)/$CLIENTS)" "$cs s" "POST→ready $cp s" "$(ratio "$cs" "$cp")" ""
}

{
	echo "| what | module | baseline | ratio | target |"
	echo "|---|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
	echo
	echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); runs: $RUNS (medians)"
} | tee "$work/results.md"
