package tokens

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestClipClaim: the "clip" claim is read strictly (an object of the numbers start and
// end, 0 ≤ start < end), signed by Sign and taken by Request.
func TestClipClaim(t *testing.T) {
	tk := keysOnce()
	fixedNow(t, t0)
	v := testVerifier(t, 0)
	sign := func(extra map[string]any) string {
		_, s := signerFor(tk.ec)
		return craft(t, hdr(tk.ec), claimsAt(t0, extra), s)
	}

	c, err := v.Verify(sign(map[string]any{"clip": map[string]any{"start": 1.5, "end": 20}}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Clip == nil || *c.Clip != (Clip{1.5, 20}) {
		t.Fatalf("clip %+v", c.Clip)
	}
	if !c.Clip.Contains(1.5, 20) || !c.Clip.Contains(2, 3) || c.Clip.Contains(1, 3) || c.Clip.Contains(2, 21) || c.Clip.Contains(3, 3) {
		t.Error("Contains")
	}
	if c, err := v.Verify(sign(nil)); err != nil || c.Clip != nil {
		t.Errorf("no clip claim: %+v %v", c, err)
	}
	for _, bad := range []any{
		nil, "1-2", 3, []any{1, 2},
		map[string]any{"start": 2, "end": 1},
		map[string]any{"start": 2, "end": 2},
		map[string]any{"start": -1, "end": 2},
		map[string]any{"start": 1},
		map[string]any{"end": 1},
		map[string]any{"start": "1", "end": 2},
		map[string]any{"start": 1, "end": 2, "step": 1},
	} {
		extra := map[string]any{"clip": bad}
		if bad == nil {
			extra = map[string]any{"clip": jsonNull{}}
		}
		_, err := v.Verify(sign(extra))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "clip") {
			t.Errorf("clip %v: %v, want an invalid token about its clip", bad, err)
		}
	}

	// Sign writes it; Verify reads it back.
	tok, err := Sign(tk.ed, "video1", Request{Expires: t0.Add(time.Hour), Clip: &Clip{0, 12.25}})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := v.Verify(tok); err != nil || c.Clip == nil || *c.Clip != (Clip{0, 12.25}) {
		t.Errorf("signed clip: %+v %v", c, err)
	}
	for _, bad := range []Clip{{5, 2}, {-1, 2}, {1, 1}} {
		if _, err := Sign(tk.ed, "video1", Request{Clip: &bad}); err == nil {
			t.Errorf("Sign accepted clip %+v", bad)
		}
	}

	// A token request takes it.
	r, err := ParseRequest([]byte(`{"clip": {"start": 3, "end": 4.5}}`))
	if err != nil || r.Clip == nil || *r.Clip != (Clip{3, 4.5}) {
		t.Errorf("request clip: %+v %v", r.Clip, err)
	}
	for _, body := range []string{`{"clip": {"start": 3}}`, `{"clip": null}`, `{"clip": {"start": 4, "end": 3}}`} {
		if _, err := ParseRequest([]byte(body)); err == nil {
			t.Errorf("request %s accepted", body)
		}
	}
}

// jsonNull marshals to null.
type jsonNull struct{}

func (jsonNull) MarshalJSON() ([]byte, error) { return []byte("null"), nil }
