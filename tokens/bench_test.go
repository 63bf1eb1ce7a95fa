package tokens

import (
	"net/netip"
	"testing"
	"time"
)

// BenchmarkVerify measures the per-request token check for each key type: cold (every
// call verifies the signature) and cached (the range requests of one download).
func BenchmarkVerify(b *testing.B) {
	tk := keysOnce()
	yes := true
	req := Request{Expires: time.Now().Add(time.Hour), Downloadable: &yes, AccessRules: []Rule{
		{Type: RuleIPSrc, Action: ActionAllow, IP: []string{"203.0.113.0/24"}},
		{Type: RuleCountry, Action: ActionBlock, Country: []string{"GB", "US"}},
	}}
	for _, k := range []*Key{tk.rsa, tk.ec, tk.ed} {
		tok, err := Sign(k, "video1", req)
		if err != nil {
			b.Fatal(err)
		}
		for _, mode := range []struct {
			name  string
			cache int
		}{{"cold", 0}, {"cached", 1024}} {
			b.Run(k.Alg()+"/"+mode.name, func(b *testing.B) {
				v := testVerifier(b, mode.cache)
				if _, err := v.Verify(tok); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := v.Verify(tok); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkVerifyCachedParallel: cache hits from all cores at once (lock contention).
func BenchmarkVerifyCachedParallel(b *testing.B) {
	tk := keysOnce()
	tok, err := Sign(tk.ed, "video1", Request{Expires: time.Now().Add(time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	v := testVerifier(b, 1024)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkAllow evaluates five rules, the most a token may carry, for a client that
// matches only the last.
func BenchmarkAllow(b *testing.B) {
	c := &Claims{Subject: "v", AccessRules: mustRules(b, `[
		{"type":"ip.src","action":"block","ip":["192.0.2.0/24","198.51.100.0/24","2001:db8::/32"]},
		{"type":"ip.geoip.country","action":"block","country":["CN","RU","KP"]},
		{"type":"ip.src","action":"allow","ip":["10.0.0.0/8"]},
		{"type":"ip.geoip.country","action":"allow","country":["gb","us","se"]},
		{"type":"any","action":"block"}]`)}
	ip := netip.MustParseAddr("::ffff:81.2.69.142")
	b.Run("rules", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if c.Allow(ip, "FR") {
				b.Fatal("allowed")
			}
		}
	})
	g := openTestGeoIP(b, "GeoLite2-Country-Test.mmdb")
	b.Run("with GeoIP lookup", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if !c.Allow(ip, g.Country(ip)) {
				b.Fatal("refused")
			}
		}
	})
}
