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
#              origin requests per segment, the holder's local disk traffic.
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
PARTS=${PARTS:-"loopback shaped memory delivery fleet"} # which comparisons to run
data=bench/data
work=bench/work
bin=bench/bin
rm -rf "$work" && mkdir -p "$work" "$bin"
for v in $VIDEOS $LONG; do
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
wait_port 18090
wait_port 18091

# A signing key for the signed-delivery run.
"$bin/caddy" stream-downloads keygen --type ed25519 >"$work/key.txt"
kid=$(awk '/^kid:/ {print $2}' "$work/key.txt")
awk '/BEGIN PRIVATE KEY/,/END PRIVATE KEY/' "$work/key.txt" >"$work/key.pem"

# start_edge <origin port> <storage dir>: a fresh Caddy with the module on 18080 and a
# file_server of its storage on 18092; sets edge_pid.
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

has() { [[ " $PARTS " == *" $1 "* ]]; }
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

{
	echo "| what | module | baseline | ratio | target |"
	echo "|---|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
	echo
	echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); runs: $RUNS (medians)"
} | tee "$work/results.md"
