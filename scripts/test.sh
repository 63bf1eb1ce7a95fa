#!/usr/bin/env bash
# Runs the project's tests: installs what they need when it is missing (ffmpeg and chromium
# from Debian's packages, the versitygw S3 server with go install), then `go test` on every
# package. Extra arguments go to go test.
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

# The S3 server the fleet tests start (internal/testutil.StartS3), built once here so that its
# build (about 3 CPU-minutes) stays out of the timed tests; the tests find it in
# $(go env GOBIN), else $(go env GOPATH)/bin. Kept when already at this version.
gobin="$(go env GOBIN)"
versitygw="${gobin:-$(go env GOPATH)/bin}/versitygw"
if ! go version -m "$versitygw" 2>/dev/null | grep -qE '^\s+mod\s+github.com/versity/versitygw\s+v1\.8\.0\s'; then
	echo "installing versitygw v1.8.0 (go install)…"
	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
fi

go test -timeout 30m -count=1 "$@" ./...
