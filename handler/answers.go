package handler

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/packager"
)

// answer is what a client is told of a refusal of the packager (or of the on-demand
// rates): a status, one line, and a Retry-After in seconds (0: none). The API sends it
// in its envelope, the delivery as plain text.
type answer struct {
	status int
	msg    string
	retry  int
}

// answerFor maps the errors of the packager to their answers, for the API and the
// delivery alike; false for nil and for the errors that are the server's (the caller
// logs them and answers 500).
func (h *Handler) answerFor(err error, video string) (answer, bool) {
	var limited *errRateLimited
	var noRendition *packager.NoRenditionError
	switch {
	case err == nil:
		return answer{}, false
	case errors.Is(err, packager.ErrNotCreated):
		return answer{http.StatusNotFound, "download not found", 0}, true
	case errors.As(err, &noRendition):
		return answer{http.StatusNotFound, "video " + video + ": " + noRendition.Error(), 0}, true
	case errors.Is(err, packager.ErrNotFound):
		return answer{http.StatusNotFound, "the origin has no video " + video, 0}, true
	case errors.Is(err, packager.ErrLive):
		return answer{http.StatusConflict, "video " + video + " is a live stream (no EXT-X-ENDLIST); only finished videos can be downloaded", 0}, true
	case errors.Is(err, packager.ErrInProgress):
		return answer{http.StatusServiceUnavailable, "download is being prepared, try again shortly", inProgressRetry(err, h.OnDemand)}, true
	case errors.Is(err, packager.ErrEvicted):
		return answer{http.StatusNotFound, "download not available: its file was removed to free storage; create it again", 0}, true
	case errors.Is(err, packager.ErrFailed):
		return answer{http.StatusNotFound, "download not available: packaging failed", 0}, true
	case errors.As(err, &limited):
		return answer{http.StatusTooManyRequests, limited.Error(), max(1, int((limited.retry+time.Second-1)/time.Second))}, true
	case errors.Is(err, packager.ErrUnavailable):
		return answer{http.StatusBadGateway, "download could not be created: the origin could not provide the video", 0}, true
	case errors.Is(err, packager.ErrUnreachable):
		return answer{http.StatusServiceUnavailable, "the shared store of this fleet did not answer; try again shortly", unreachableRetryAfter}, true
	case errors.Is(err, packager.ErrQueueFull):
		return answer{http.StatusServiceUnavailable, "too many downloads are waiting to be packaged (max_queue); try again later", queueRetryAfter}, true
	}
	return answer{}, false
}

// unreachableRetryAfter is the Retry-After, in seconds, of an answer that the fleet's
// bucket did not give.
const unreachableRetryAfter = 5

// header sets a's headers on w, and returns w.
func (a answer) header(w http.ResponseWriter) http.ResponseWriter {
	if a.retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(a.retry))
	}
	return w
}

// inProgressRetry is the Retry-After, in seconds, of a download being packaged: when the
// run's progress so far says it will be ready (at least a second), else retryAfter's
// constant.
func inProgressRetry(err error, onDemand time.Duration) int {
	var ip *packager.InProgressError
	if errors.As(err, &ip) && ip.ETA > 0 {
		return max(1, int((ip.ETA+time.Second-1)/time.Second))
	}
	return retryAfter(onDemand)
}
