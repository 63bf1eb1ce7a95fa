package handler

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/packager"
	"github.com/stream-downloads/caddy-stream-downloads/tokens"
)

// envelope is the shape of every API answer.
type envelope struct {
	Result   any        `json:"result"`
	Success  bool       `json:"success"`
	Errors   []apiError `json:"errors"`
	Messages []string   `json:"messages"`
}

type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// entry is one download in an API answer.
type entry struct {
	Status          packager.Status `json:"status"`
	URL             string          `json:"url"`
	PercentComplete float64         `json:"percentComplete"`
	ErrorReasonCode string          `json:"errorReasonCode,omitempty"`
	ErrorReasonText string          `json:"errorReasonText,omitempty"`
}

// checkAPI answers the request itself (and returns false) when its bearer token or its
// video id is not right.
func (h *Handler) checkAPI(w http.ResponseWriter, r *http.Request, video string) (bool, error) {
	if !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="stream_downloads"`)
		return false, writeError(w, http.StatusUnauthorized, "missing or invalid API token (Authorization: Bearer <api_token>)")
	}
	if !ValidID(video) {
		return false, writeError(w, http.StatusBadRequest, "invalid video id: use 1 to 128 of A-Z a-z 0-9 _ -")
	}
	return true, nil
}

// api serves …/stream/{video}/downloads (typ empty) and …/stream/{video}/downloads/{typ}.
func (h *Handler) api(w http.ResponseWriter, r *http.Request, video, typ string) error {
	if ok, err := h.checkAPI(w, r, video); !ok {
		return err
	}
	if _, ok := packager.ParseType(typ); typ != "" && !ok {
		return writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown download type %q: use %s", typ, packager.TypeNames()))
	}
	switch r.Method {
	case http.MethodPost:
		if typ == "" {
			typ = packager.DefaultType.Name
		}
		if !h.typeAllowed(typ) {
			return writeError(w, http.StatusBadRequest, fmt.Sprintf("download type %q is not offered here: use %s (types)", typ, strings.Join(h.Types, ", ")))
		}
		_, err := h.Manager.Create(r.Context(), packager.Key{Video: video, Type: typ}, h.Origin(r, video))
		if a, ok := h.answerFor(err, video); ok {
			return writeError(a.header(w), a.status, a.msg)
		}
		if err != nil {
			h.Logger.Error("creating download", zap.String("video", video), zap.String("type", typ), zap.Error(err))
			return writeError(w, http.StatusInternalServerError, "could not create the download: "+clientText(err))
		}
		return h.writeStates(w, r, video, typ)
	case http.MethodGet, http.MethodHead:
		return h.writeStates(w, r, video, typ)
	case http.MethodDelete:
		var types []string
		if typ != "" {
			types = []string{typ}
		}
		found, err := h.Manager.Delete(r.Context(), video, types...)
		if a, ok := h.answerFor(err, video); ok {
			return writeError(a.header(w), a.status, a.msg)
		}
		if err != nil {
			h.Logger.Error("deleting download", zap.String("video", video), zap.String("type", allTypes(typ)), zap.Error(err))
			return writeError(w, http.StatusInternalServerError, "could not delete the download files: "+clientText(err))
		}
		if !found {
			return writeError(w, http.StatusNotFound, "no such download")
		}
		return h.writeStates(w, r, video, "")
	}
	w.Header().Set("Allow", "GET, HEAD, POST, DELETE")
	return writeError(w, http.StatusMethodNotAllowed, "method not allowed")
}

// typeAllowed reports whether downloads of the type named typ may be created and
// delivered (Types).
func (h *Handler) typeAllowed(typ string) bool {
	return len(h.Types) == 0 || slices.Contains(h.Types, typ)
}

// writeStates answers the video's downloads (only typ's when set) as a map by type.
func (h *Handler) writeStates(w http.ResponseWriter, r *http.Request, video, typ string) error {
	result := map[string]entry{}
	messages := []string{}
	states, err := h.Manager.List(r.Context(), video)
	if a, ok := h.answerFor(err, video); ok {
		return writeError(a.header(w), a.status, a.msg)
	}
	if err != nil {
		return err
	}
	for _, st := range states {
		if typ != "" && st.Type != typ {
			continue
		}
		t, _ := packager.ParseType(st.Type) // List has downloads of known types only
		e := entry{
			Status:          st.Status,
			URL:             h.baseURL(r) + "/" + video + "/downloads/" + t.FileName(),
			PercentComplete: st.Percent,
		}
		if st.Status == packager.StatusError {
			e.ErrorReasonCode, e.ErrorReasonText = st.ErrorCode, st.ErrorText
		}
		if st.Status == packager.StatusReady {
			for _, n := range st.Notes {
				messages = append(messages, st.Type+": "+n)
			}
		}
		result[st.Type] = e
	}
	return writeJSON(w, http.StatusOK, envelope{Result: result, Success: true, Errors: []apiError{}, Messages: messages})
}

// queueRetryAfter is the Retry-After, in seconds, of a creation refused by max_queue:
// the queue drains at the pace of whole packaging runs.
const queueRetryAfter = 30

// clientText is what a client is told of an unexpected error: the text of a storage
// error (which names no local path), else nothing more than the log has it.
func clientText(err error) string {
	if errors.Is(err, packager.ErrStorage) {
		return err.Error()
	}
	return "internal error (the server's log has the details)"
}

func writeError(w http.ResponseWriter, status int, msg string) error {
	return writeJSON(w, status, envelope{Success: false, Errors: []apiError{{Code: status, Message: msg}}, Messages: []string{}})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err = w.Write(append(b, '\n'))
	return err
}

// maxTokenRequest bounds the body of POST …/token.
const maxTokenRequest = 64 << 10

// defaultTokenLifetime is the expiry of a token whose request sets none.
const defaultTokenLifetime = time.Hour

// signToken serves POST …/stream/{video}/token: a viewer token for video, signed with
// the private signing key, with the optional claims of the JSON body (docs/spec.md §5).
func (h *Handler) signToken(w http.ResponseWriter, r *http.Request, video string) error {
	if ok, err := h.checkAPI(w, r, video); !ok {
		return err
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return writeError(w, http.StatusMethodNotAllowed, "method not allowed: use POST")
	}
	if h.Signer == nil {
		return writeError(w, http.StatusBadRequest, "no private signing_key is configured to sign tokens with")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTokenRequest))
	if err != nil {
		return writeError(w, http.StatusBadRequest, "invalid token request: "+err.Error())
	}
	req, err := tokens.ParseRequest(body)
	if err != nil {
		return writeError(w, http.StatusBadRequest, "invalid token request: "+err.Error())
	}
	if req.Expires.IsZero() {
		req.Expires = now().Add(defaultTokenLifetime)
	}
	tok, err := tokens.Sign(h.Signer, video, req)
	if err != nil {
		return writeError(w, http.StatusBadRequest, "invalid token request: "+err.Error())
	}
	return writeJSON(w, http.StatusOK, envelope{Result: map[string]string{"token": tok}, Success: true, Errors: []apiError{}, Messages: []string{}})
}

// now is the clock seam for token lifetimes.
var now = time.Now

// allTypes is the type field of a log line about typ, "*" when empty (every type).
func allTypes(typ string) string {
	if typ == "" {
		return "*"
	}
	return typ
}
