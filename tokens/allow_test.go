package tokens

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

func mustRules(t testing.TB, js string) []Rule {
	t.Helper()
	r, err := parseRules(json.RawMessage(js))
	if err != nil {
		t.Fatalf("rules %s: %v", js, err)
	}
	return r
}

func TestAllow(t *testing.T) {
	addr := netip.MustParseAddr
	cases := []struct {
		name    string
		rules   string
		ip      netip.Addr
		country string
		want    bool
	}{
		{"no rules", `[]`, addr("198.51.100.1"), "", true},
		{"any block", `[{"type":"any","action":"block"}]`, addr("198.51.100.1"), "GB", false},
		{"any allow", `[{"type":"any","action":"allow"}]`, netip.Addr{}, "", true},
		{"ip.src IPv4 in CIDR", `[{"type":"ip.src","action":"allow","ip":["203.0.113.0/24"]},{"type":"any","action":"block"}]`, addr("203.0.113.77"), "", true},
		{"ip.src IPv4 outside CIDR", `[{"type":"ip.src","action":"allow","ip":["203.0.113.0/24"]},{"type":"any","action":"block"}]`, addr("203.0.114.1"), "", false},
		{"ip.src IPv4-mapped client", `[{"type":"ip.src","action":"allow","ip":["203.0.113.0/24"]},{"type":"any","action":"block"}]`, addr("::ffff:203.0.113.77"), "", true},
		{"ip.src IPv4-mapped rule", `[{"type":"ip.src","action":"block","ip":["::ffff:203.0.113.0/120"]}]`, addr("203.0.113.77"), "", false},
		{"ip.src IPv4-mapped single address rule", `[{"type":"ip.src","action":"block","ip":["::ffff:203.0.113.5"]}]`, addr("203.0.113.5"), "", false},
		{"ip.src exact IPv4", `[{"type":"ip.src","action":"block","ip":["192.0.2.1"]}]`, addr("192.0.2.1"), "", false},
		{"ip.src exact IPv4, other", `[{"type":"ip.src","action":"block","ip":["192.0.2.1"]}]`, addr("192.0.2.2"), "", true},
		{"ip.src host bits set in CIDR", `[{"type":"ip.src","action":"block","ip":["192.0.2.77/24"]}]`, addr("192.0.2.1"), "", false},
		{"ip.src IPv6 CIDR", `[{"type":"ip.src","action":"block","ip":["2001:db8::/32"]}]`, addr("2001:db8:1::5"), "", false},
		{"ip.src IPv6 outside", `[{"type":"ip.src","action":"block","ip":["2001:db8::/32"]}]`, addr("2001:db9::5"), "", true},
		{"ip.src IPv6 exact", `[{"type":"ip.src","action":"allow","ip":["2001:db8::1"]},{"type":"any","action":"block"}]`, addr("2001:db8::1"), "", true},
		{"ip.src IPv6 exact, other", `[{"type":"ip.src","action":"allow","ip":["2001:db8::1"]},{"type":"any","action":"block"}]`, addr("2001:db8::2"), "", false},
		{"ip.src IPv6 with zone client", `[{"type":"ip.src","action":"block","ip":["fe80::/10"]}]`, addr("fe80::1%eth0"), "", false},
		{"ip.src IPv4 rule vs IPv6 client", `[{"type":"ip.src","action":"block","ip":["0.0.0.0/0"]}]`, addr("2001:db8::1"), "", true},
		{"ip.src IPv6 /0 vs IPv4 client", `[{"type":"ip.src","action":"block","ip":["::/0"]}]`, addr("192.0.2.1"), "", true},
		{"ip.src several entries", `[{"type":"ip.src","action":"block","ip":["10.0.0.0/8","2001:db8::/32","192.0.2.1"]}]`, addr("192.0.2.1"), "", false},
		{"ip.src invalid client", `[{"type":"ip.src","action":"block","ip":["0.0.0.0/0","::/0"]}]`, netip.Addr{}, "", true},
		{"allowlist, invalid client", `[{"type":"ip.src","action":"allow","ip":["0.0.0.0/0"]},{"type":"any","action":"block"}]`, netip.Addr{}, "", false},
		{"country upper", `[{"type":"ip.geoip.country","action":"allow","country":["GB"]},{"type":"any","action":"block"}]`, addr("81.2.69.142"), "GB", true},
		{"country rule lower, client upper", `[{"type":"ip.geoip.country","action":"allow","country":["gb"]},{"type":"any","action":"block"}]`, addr("81.2.69.142"), "GB", true},
		{"country client lower", `[{"type":"ip.geoip.country","action":"allow","country":["GB"]},{"type":"any","action":"block"}]`, addr("81.2.69.142"), "gb", true},
		{"country mixed", `[{"type":"ip.geoip.country","action":"block","country":["Se","jp"]}]`, addr("81.2.69.142"), "JP", false},
		{"country other", `[{"type":"ip.geoip.country","action":"allow","country":["GB"]},{"type":"any","action":"block"}]`, addr("81.2.69.142"), "US", false},
		{"country unknown vs allowlist", `[{"type":"ip.geoip.country","action":"allow","country":["GB"]},{"type":"any","action":"block"}]`, addr("127.0.0.1"), "", false},
		{"country unknown vs blocklist", `[{"type":"ip.geoip.country","action":"block","country":["GB"]}]`, addr("127.0.0.1"), "", true},
		{"country junk", `[{"type":"ip.geoip.country","action":"block","country":["GB"]}]`, addr("127.0.0.1"), "GBR", true},
		{"first match: allow before block", `[{"type":"ip.src","action":"allow","ip":["192.0.2.0/24"]},{"type":"ip.src","action":"block","ip":["192.0.2.0/24"]}]`, addr("192.0.2.1"), "", true},
		{"first match: block before allow", `[{"type":"ip.src","action":"block","ip":["192.0.2.0/24"]},{"type":"ip.src","action":"allow","ip":["192.0.2.0/24"]}]`, addr("192.0.2.1"), "", false},
		{"first match: country before ip", `[{"type":"ip.geoip.country","action":"block","country":["SE"]},{"type":"ip.src","action":"allow","ip":["89.160.20.112/28"]}]`, addr("89.160.20.115"), "SE", false},
		{"no match allows", `[{"type":"ip.src","action":"block","ip":["192.0.2.0/24"]},{"type":"ip.geoip.country","action":"block","country":["CN"]}]`, addr("198.51.100.1"), "GB", true},
		{"no match allows, even all allow rules", `[{"type":"ip.src","action":"allow","ip":["192.0.2.0/24"]}]`, addr("198.51.100.1"), "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := &Claims{Subject: "v", AccessRules: mustRules(t, c.rules)}
			if got := cl.Allow(c.ip, c.country); got != c.want {
				t.Fatalf("Allow(%v, %q) = %v, want %v", c.ip, c.country, got, c.want)
			}
		})
	}
	// Rules built by hand compile on the fly; invalid ones refuse.
	hand := &Claims{AccessRules: []Rule{{Type: RuleIPSrc, Action: ActionBlock, IP: []string{"192.0.2.0/24"}}}}
	if hand.Allow(addr("192.0.2.9"), "") || !hand.Allow(addr("192.0.3.9"), "") {
		t.Fatal("hand-built rule")
	}
	bad := &Claims{AccessRules: []Rule{{Type: "nope", Action: ActionAllow}}}
	if bad.Allow(addr("192.0.2.9"), "") {
		t.Fatal("invalid hand-built rule allowed")
	}
	var nilClaims *Claims
	if !nilClaims.Allow(addr("192.0.2.9"), "") {
		t.Fatal("nil claims")
	}
}

func openTestGeoIP(t testing.TB, name string) *GeoIP {
	t.Helper()
	g, err := OpenGeoIP(filepath.Join("testdata", "geoip", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func TestGeoIP(t *testing.T) {
	common := map[string]string{
		"81.2.69.142":          "GB",
		"81.2.69.143":          "GB",
		"81.2.69.170":          "GB",
		"2.125.160.217":        "GB",
		"216.160.83.57":        "US",
		"50.114.1.1":           "US",
		"89.160.20.115":        "SE",
		"111.235.160.1":        "CN",
		"202.196.224.1":        "PH",
		"67.43.156.1":          "BT",
		"2001:218::1":          "JP",
		"2001:218:ffff::1":     "JP",
		"::ffff:81.2.69.142":   "GB",
		"::ffff:89.160.20.115": "SE",
		"127.0.0.1":            "",
		"10.0.0.1":             "",
		"192.0.2.1":            "",
		"2001:db8::1":          "",
		"::1":                  "",
	}
	for _, db := range []string{"GeoLite2-Country-Test.mmdb", "GeoIP2-Country-Test.mmdb"} {
		t.Run(db, func(t *testing.T) {
			g := openTestGeoIP(t, db)
			if g.DatabaseType() == "" {
				t.Fatal("no database type")
			}
			for ip, want := range common {
				if got := g.Country(netip.MustParseAddr(ip)); got != want {
					t.Errorf("%s: %q, want %q", ip, got, want)
				}
			}
			if got := g.Country(netip.Addr{}); got != "" {
				t.Errorf("invalid address: %q", got)
			}
			// Rules evaluated with the database's answers.
			rules := mustRules(t, `[{"type":"ip.geoip.country","action":"allow","country":["gb","se"]},{"type":"ip.geoip.country","action":"block","country":["US"]}]`)
			cl := &Claims{Subject: "v", AccessRules: append(rules, mustRules(t, `[{"type":"ip.src","action":"block","ip":["2001:218::/32"]}]`)...)}
			for ip, want := range map[string]bool{
				"81.2.69.142":       true,  // GB allowed
				"89.160.20.115":     true,  // SE allowed
				"216.160.83.57":     false, // US blocked
				"2001:218::1":       false, // JP: no country rule, blocked by IP
				"127.0.0.1":         true,  // unknown country: no rule matches
				"111.235.160.1":     true,  // CN: no rule matches
				"::ffff:50.114.0.1": false,
			} {
				a := netip.MustParseAddr(ip)
				if got := cl.Allow(a, g.Country(a)); got != want {
					t.Errorf("Allow(%s, %q) = %v, want %v", ip, g.Country(a), got, want)
				}
			}
		})
	}
	// A record without a country (GeoIP2 test data: 214.1.1.0/24) is unknown.
	g := openTestGeoIP(t, "GeoIP2-Country-Test.mmdb")
	if got := g.Country(netip.MustParseAddr("214.1.1.1")); got != "" {
		t.Errorf("record without country: %q", got)
	}
	if got := g.Country(netip.MustParseAddr("217.65.48.1")); got != "GI" {
		t.Errorf("217.65.48.1: %q", got)
	}
}

func TestGeoIPCloseDuringLookups(t *testing.T) {
	g, err := OpenGeoIP(filepath.Join("testdata", "geoip", "GeoLite2-Country-Test.mmdb"))
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("81.2.69.142")
	// Each of the lookups' goroutines signals its first lookup, and its first
	// one begun after Close.
	done, closed := make(chan struct{}), make(chan struct{})
	var wg, started, afterClose sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		started.Add(1)
		afterClose.Add(1)
		go func() {
			defer wg.Done()
			first, sawClose, failed := true, false, false
			for {
				select {
				case <-done:
					return
				default:
				}
				isClosed := false
				select {
				case <-closed:
					isClosed = true
				default:
				}
				if c := g.Country(ip); c != "GB" && c != "" && !failed {
					t.Errorf("country %q", c)
					failed = true
				}
				if first {
					started.Done()
					first = false
				}
				if isClosed && !sawClose {
					afterClose.Done()
					sawClose = true
				}
			}
		}()
	}
	started.Wait()
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	close(closed)
	afterClose.Wait()
	runtime.GC()
	close(done)
	wg.Wait()
	if c := g.Country(ip); c != "" {
		t.Fatalf("after Close: %q", c)
	}
	if err := g.Close(); err != nil {
		t.Fatal("second Close")
	}
}

func TestOpenGeoIPErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenGeoIP(filepath.Join(dir, "missing.mmdb")); err == nil {
		t.Fatal("missing file opened")
	}
	junk := filepath.Join(dir, "junk.mmdb")
	if err := os.WriteFile(junk, []byte("not a database at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenGeoIP(junk); err == nil {
		t.Fatal("junk opened")
	}
	var g *GeoIP
	if g.Country(netip.MustParseAddr("81.2.69.142")) != "" || g.Close() != nil {
		t.Fatal("nil GeoIP")
	}
}

func TestCache(t *testing.T) {
	tk := keysOnce()
	clock := fixedNow(t, t0)
	v := testVerifier(t, 3)
	sign := func(sub string, exp time.Time) string {
		tok, err := Sign(tk.ec, sub, Request{Expires: exp})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	a := sign("a", t0.Add(time.Minute))
	if _, err := v.Verify(a); err != nil {
		t.Fatal(err)
	}
	if n := v.sigChecks.Load(); n != 1 {
		t.Fatalf("%d signature checks", n)
	}
	for i := 0; i < 5; i++ {
		c, err := v.Verify(a)
		if err != nil || c.Subject != "a" {
			t.Fatal(err)
		}
		c.Subject = "mutated" // a caller's change must not reach the cache
	}
	if n := v.sigChecks.Load(); n != 1 {
		t.Fatalf("cached token checked again: %d signature checks", n)
	}
	if c, _ := v.Verify(a); c.Subject != "a" {
		t.Fatal("cache entry mutated through a returned Claims")
	}
	if hits, misses, size := v.CacheStats(); hits != 6 || misses != 1 || size != 1 {
		t.Fatalf("stats %d %d %d", hits, misses, size)
	}

	// A cached token still expires (with leeway).
	*clock = t0.Add(time.Minute + Leeway - time.Second)
	if _, err := v.Verify(a); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	*clock = t0.Add(time.Minute + Leeway)
	if _, err := v.Verify(a); err != errExpired {
		t.Fatalf("cached token after exp: %v", err)
	}
	if _, _, size := v.CacheStats(); size != 0 {
		t.Fatal("expired token left in the cache")
	}
	*clock = t0

	// A failed token is not cached: each try checks again.
	bad := craft(t, hdr(tk.ec), claimsAt(t0, nil), signES256(tk.ec2.Private))
	before := v.sigChecks.Load()
	for i := 0; i < 3; i++ {
		if _, err := v.Verify(bad); err != errBadSignature {
			t.Fatal(err)
		}
	}
	if got := v.sigChecks.Load() - before; got != 3 {
		t.Fatalf("bad token: %d checks", got)
	}
	if _, _, size := v.CacheStats(); size != 0 {
		t.Fatal("bad token cached")
	}

	// Bounded, least recently used evicted.
	toks := []string{sign("t0", time.Time{}), sign("t1", time.Time{}), sign("t2", time.Time{}), sign("t3", time.Time{})}
	for _, tok := range toks[:3] {
		v.Verify(tok)
	}
	v.Verify(toks[0]) // t0 is now the most recent; t1 the least
	v.Verify(toks[3]) // evicts t1
	if _, _, size := v.CacheStats(); size != 3 {
		t.Fatalf("cache size %d", size)
	}
	before = v.sigChecks.Load()
	v.Verify(toks[0])
	v.Verify(toks[3])
	if v.sigChecks.Load() != before {
		t.Fatal("recent tokens were evicted")
	}
	v.Verify(toks[1])
	if v.sigChecks.Load() != before+1 {
		t.Fatal("least recently used token was not evicted")
	}
	for i := 0; i < 100; i++ {
		v.Verify(sign("many", t0.Add(time.Duration(i+1)*time.Minute)))
	}
	if _, _, size := v.CacheStats(); size != 3 {
		t.Fatalf("cache size %d after many tokens", size)
	}

	// No cache: every Verify checks.
	nc := testVerifier(t, 0)
	nc.Verify(a)
	nc.Verify(a)
	if nc.sigChecks.Load() != 2 {
		t.Fatal("verifier without cache cached")
	}
}

// A token cached while valid is refused by nbf if the clock goes back.
func TestCacheNotBefore(t *testing.T) {
	tk := keysOnce()
	clock := fixedNow(t, t0)
	v := testVerifier(t, 10)
	tok, err := Sign(tk.ed, "v", Request{NotBefore: t0, Expires: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	*clock = t0.Add(-2 * Leeway)
	if _, err := v.Verify(tok); err != errNotYet {
		t.Fatalf("got %v", err)
	}
}
