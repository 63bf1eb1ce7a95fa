package tokens

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"
)

// MaxRules is the most access rules a token may carry (docs/spec.md §5).
const MaxRules = 5

// Rule types and actions.
const (
	RuleAny     = "any"
	RuleIPSrc   = "ip.src"
	RuleCountry = "ip.geoip.country"

	ActionAllow = "allow"
	ActionBlock = "block"
)

// Rule is one access rule: {"type": T, "action": "allow"|"block", "ip": [...]} or
// {..., "country": [...]}. Its JSON form is read strictly (exact member names, no
// members foreign to the type, known type and action, valid addresses and codes).
type Rule struct {
	Type    string   `json:"type"`
	Action  string   `json:"action"`
	IP      []string `json:"ip,omitempty"`
	Country []string `json:"country,omitempty"`

	prefixes  []netip.Prefix // parsed IP, IPv4 unmapped
	countries []string       // Country upper-cased
	compiled  bool
}

// Claims are the verified claims of a token. Treat them as read-only.
type Claims struct {
	// Subject is "sub", the video id; never empty.
	Subject string
	// KeyID is the id of the key that verified the token.
	KeyID string
	// Expires and NotBefore are "exp" and "nbf"; zero when absent.
	Expires, NotBefore time.Time
	// Downloadable is "downloadable"; false when absent.
	Downloadable bool
	// AccessRules are "accessRules", compiled; nil when absent.
	AccessRules []Rule
	// Clip is "clip"; nil when absent. A token with a clip allows only clips of the
	// video within it, never the whole file (docs/clips.md).
	Clip *Clip
}

// Clip is the "clip" claim, {"start": S, "end": E}: seconds of the video's
// presentation, 0 ≤ start < end.
type Clip struct {
	Start float64 `json:"start"`
	End   float64 `json:"end"`
}

// Contains reports whether the clip [start, end) lies within c.
func (c *Clip) Contains(start, end float64) bool {
	return start >= c.Start && end <= c.End && start < end
}

// check says what is wrong with c, if anything.
func (c *Clip) check() error {
	switch {
	case math.IsNaN(c.Start) || math.IsInf(c.Start, 0) || math.IsNaN(c.End) || math.IsInf(c.End, 0):
		return errors.New("clip start and end must be numbers")
	case c.Start < 0:
		return errors.New("clip start must be 0 or more")
	case c.End <= c.Start:
		return errors.New("clip end must be after its start")
	}
	return nil
}

// parseClip reads a "clip" claim strictly: an object of exactly the numbers start and
// end, with 0 ≤ start < end.
func parseClip(raw json.RawMessage) (*Clip, error) {
	var m map[string]json.RawMessage
	if isNull(raw) || json.Unmarshal(raw, &m) != nil {
		return nil, errors.New(`clip must be an object {"start": seconds, "end": seconds}`)
	}
	c := &Clip{}
	for name, v := range m {
		var dst *float64
		switch name {
		case "start":
			dst = &c.Start
		case "end":
			dst = &c.End
		default:
			return nil, errors.New("clip: unknown member (start, end)")
		}
		v = bytes.TrimSpace(v)
		if len(v) == 0 || !(v[0] == '-' || v[0] >= '0' && v[0] <= '9') || json.Unmarshal(v, dst) != nil {
			return nil, fmt.Errorf("clip %s must be a number of seconds", name)
		}
	}
	if _, ok := m["start"]; !ok {
		return nil, errors.New("clip start is missing")
	}
	if _, ok := m["end"]; !ok {
		return nil, errors.New("clip end is missing")
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// Allow evaluates the access rules first to last for a client at ip from country
// ("" when unknown): the first rule that matches decides, allow → true, block → false;
// when none matches, the client is allowed. An ip.src rule matches when ip (IPv4-mapped
// IPv6 addresses count as IPv4) is in one of its addresses or prefixes; an invalid ip
// matches none. An ip.geoip.country rule matches when country equals one of its codes,
// case-insensitively; an unknown country matches none.
func (c *Claims) Allow(ip netip.Addr, country string) bool {
	if c == nil {
		return true
	}
	ip = ip.WithZone("").Unmap()
	for i := range c.AccessRules {
		r := &c.AccessRules[i]
		if !r.compiled {
			// Built by hand, not by Verify: compile it, and refuse if it is invalid.
			cp := *r
			if err := cp.compile(); err != nil {
				return false
			}
			r = &cp
		}
		if r.matches(ip, country) {
			return r.Action == ActionAllow
		}
	}
	return true
}

func (r *Rule) matches(ip netip.Addr, country string) bool {
	switch r.Type {
	case RuleAny:
		return true
	case RuleIPSrc:
		if !ip.IsValid() {
			return false
		}
		for _, p := range r.prefixes {
			if p.Contains(ip) {
				return true
			}
		}
	case RuleCountry:
		if len(country) != 2 {
			return false
		}
		for _, c := range r.countries {
			if strings.EqualFold(c, country) {
				return true
			}
		}
	}
	return false
}

// ruleError is a rule problem, worded to be shown.
func ruleError(i int, format string, a ...any) error {
	return fmt.Errorf("access rule %d: %s", i+1, fmt.Sprintf(format, a...))
}

// compile checks the rule and fills its parsed fields.
func (r *Rule) compile() error {
	switch r.Action {
	case ActionAllow, ActionBlock:
	case "":
		return errors.New("action is missing")
	default:
		return errors.New(`unknown action (allow or block)`)
	}
	r.prefixes, r.countries = nil, nil
	switch r.Type {
	case RuleAny:
		if r.IP != nil || r.Country != nil {
			return errors.New(`an "any" rule takes no ip or country`)
		}
	case RuleIPSrc:
		if r.Country != nil {
			return errors.New(`an "ip.src" rule takes no country`)
		}
		if len(r.IP) == 0 {
			return errors.New(`an "ip.src" rule needs at least one address in "ip"`)
		}
		r.prefixes = make([]netip.Prefix, 0, len(r.IP))
		for _, s := range r.IP {
			p, ok := parsePrefix(s)
			if !ok {
				return errors.New(`"ip" holds an invalid IP address or CIDR`)
			}
			r.prefixes = append(r.prefixes, p)
		}
	case RuleCountry:
		if r.IP != nil {
			return errors.New(`an "ip.geoip.country" rule takes no ip`)
		}
		if len(r.Country) == 0 {
			return errors.New(`an "ip.geoip.country" rule needs at least one code in "country"`)
		}
		r.countries = make([]string, 0, len(r.Country))
		for _, c := range r.Country {
			if !isCountryCode(c) {
				return errors.New(`"country" holds an invalid code (ISO 3166-1 alpha-2, like "GB")`)
			}
			r.countries = append(r.countries, strings.ToUpper(c))
		}
	case "":
		return errors.New("type is missing")
	default:
		return errors.New("unknown type (any, ip.src or ip.geoip.country)")
	}
	r.compiled = true
	return nil
}

// parsePrefix reads an IP address or CIDR; IPv4-mapped IPv6 forms become IPv4, zones
// are refused, host bits are cleared.
func parsePrefix(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "%") || strings.TrimSpace(s) != s || s == "" {
		return netip.Prefix{}, false
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		a, bits := p.Addr(), p.Bits()
		if a.Is4In6() {
			if bits < 96 {
				// A prefix wider than the mapped range: keep it as IPv6; it can
				// only match IPv6 clients, since clients are unmapped.
				return p.Masked(), true
			}
			a, bits = a.Unmap(), bits-96
		}
		return netip.PrefixFrom(a, bits).Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}

func isCountryCode(s string) bool {
	if len(s) != 2 {
		return false
	}
	for i := 0; i < 2; i++ {
		c := s[i] | 0x20
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// UnmarshalJSON reads a rule strictly: exact member names type, action, ip and
// country, nothing else; the rule must be valid.
func (r *Rule) UnmarshalJSON(data []byte) error {
	rule, err := parseRule(data)
	if err != nil {
		return err
	}
	*r = rule
	return nil
}

func parseRule(data []byte) (Rule, error) {
	var m map[string]json.RawMessage
	if isNull(data) || json.Unmarshal(data, &m) != nil {
		return Rule{}, errors.New("not a JSON object")
	}
	var r Rule
	for name, raw := range m {
		var err error
		switch name {
		case "type":
			err = strictString(raw, &r.Type)
		case "action":
			err = strictString(raw, &r.Action)
		case "ip":
			err = strictStrings(raw, &r.IP)
		case "country":
			err = strictStrings(raw, &r.Country)
		default:
			return Rule{}, errors.New("unknown member (type, action, ip, country)")
		}
		if err != nil {
			return Rule{}, fmt.Errorf("%q %v", name, err)
		}
	}
	if err := r.compile(); err != nil {
		return Rule{}, err
	}
	return r, nil
}

func strictString(raw json.RawMessage, s *string) error {
	if isNull(raw) || json.Unmarshal(raw, s) != nil {
		return errors.New("must be a string")
	}
	return nil
}

func strictStrings(raw json.RawMessage, s *[]string) error {
	if isNull(raw) || json.Unmarshal(raw, s) != nil || *s == nil {
		return errors.New("must be an array of strings")
	}
	return nil
}

func isNull(raw []byte) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// parseRules reads an accessRules array: at most MaxRules valid rules. null counts as
// absent.
func parseRules(raw json.RawMessage) ([]Rule, error) {
	if isNull(raw) {
		return nil, nil
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil, errors.New("accessRules must be an array")
	}
	if len(items) > MaxRules {
		return nil, fmt.Errorf("too many access rules (at most %d)", MaxRules)
	}
	if len(items) == 0 {
		return nil, nil
	}
	rules := make([]Rule, len(items))
	for i, it := range items {
		r, err := parseRule(it)
		if err != nil {
			return nil, ruleError(i, "%v", err)
		}
		rules[i] = r
	}
	return rules, nil
}

// compileRules checks rules built in Go (for Sign) and returns compiled copies.
func compileRules(rules []Rule) ([]Rule, error) {
	if len(rules) > MaxRules {
		return nil, fmt.Errorf("too many access rules (at most %d)", MaxRules)
	}
	if len(rules) == 0 {
		return nil, nil
	}
	out := make([]Rule, len(rules))
	for i, r := range rules {
		if err := r.compile(); err != nil {
			return nil, ruleError(i, "%v", err)
		}
		out[i] = r
	}
	return out, nil
}

// maxNumericDate bounds exp and nbf (year 9999), so that time arithmetic cannot
// overflow.
const maxNumericDate = 253402300799

// parseNumericDate reads a JSON number of seconds since the epoch (fractions allowed).
func parseNumericDate(raw json.RawMessage) (time.Time, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return time.Time{}, false
	}
	var f float64
	if json.Unmarshal(raw, &f) != nil || math.IsNaN(f) || math.Abs(f) > maxNumericDate {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
}

// Request is what to put in a token besides its subject and key id: the body of
// POST …/stream/{video}/token and the flags of `caddy stream-downloads sign`. Its JSON
// form is {"exp": unix-seconds, "nbf": unix-seconds, "downloadable": bool,
// "accessRules": [...], "clip": {"start": s, "end": s}}, every member optional, read strictly with the rules Verify
// applies to a token's claims; unknown members are refused.
type Request struct {
	// Expires is "exp"; zero: the token never expires.
	Expires time.Time
	// NotBefore is "nbf"; zero: none.
	NotBefore time.Time
	// Downloadable is "downloadable"; nil: absent (which means false).
	Downloadable *bool
	// AccessRules is "accessRules"; at most MaxRules.
	AccessRules []Rule
	// Clip is "clip"; nil: absent (the whole file and any clip are allowed).
	Clip *Clip
}

// UnmarshalJSON reads a token request strictly.
func (r *Request) UnmarshalJSON(data []byte) error {
	var m map[string]json.RawMessage
	if isNull(data) || json.Unmarshal(data, &m) != nil {
		return errors.New("the token request must be a JSON object")
	}
	var req Request
	for name, raw := range m {
		switch name {
		case "exp", "nbf":
			t, ok := parseNumericDate(raw)
			if !ok {
				return fmt.Errorf("%s must be a number of seconds since 1970", name)
			}
			if name == "exp" {
				req.Expires = t
			} else {
				req.NotBefore = t
			}
		case "downloadable":
			var b bool
			if isNull(raw) || json.Unmarshal(raw, &b) != nil {
				return errors.New("downloadable must be true or false")
			}
			req.Downloadable = &b
		case "accessRules":
			rules, err := parseRules(raw)
			if err != nil {
				return err
			}
			req.AccessRules = rules
		case "clip":
			c, err := parseClip(raw)
			if err != nil {
				return err
			}
			req.Clip = c
		default:
			return fmt.Errorf("unknown member %q (exp, nbf, downloadable, accessRules, clip)", truncate(name, 40))
		}
	}
	*r = req
	return nil
}

// ParseRequest reads a token request body; an empty body is an empty request.
func ParseRequest(data []byte) (Request, error) {
	var r Request
	if len(bytes.TrimSpace(data)) == 0 {
		return r, nil
	}
	err := r.UnmarshalJSON(data)
	return r, err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
