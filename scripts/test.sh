#!/usr/bin/env bash
# Runs the project's tests: installs what they need when it is missing (ffmpeg and chromium
# from Debian's packages), then `go test` on every package. Extra arguments go to go test.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
if ! command -v ffprobe >/dev/null || ! command -v ffmpeg >/dev/null; then
	missing+=(ffmpeg)
fi
if ! command -v chromium >/dev/null; then # TestBrowserPlayback plays an MP4 in headless Chromium
	missing+=(chromium)
fi
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing ${missing[*]} (Debian packages)…"
	sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

go test -timeout 30m -count=1 "$@" ./...
