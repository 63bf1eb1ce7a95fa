#!/usr/bin/env bash
# Runs the project's tests: installs what they need when it is missing (ffmpeg from
# Debian's packages), then `go test` on every package. Extra arguments go to go test.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v ffprobe >/dev/null || ! command -v ffmpeg >/dev/null; then
	echo "installing ffmpeg (Debian package)…"
	sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq ffmpeg >/dev/null
fi

go test -timeout 30m -count=1 "$@" ./...
