package tokens

import (
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/oschwald/maxminddb-golang/v2"
)

// GeoIP looks up countries in a MaxMind DB country database: GeoIP2 or GeoLite2
// Country, or City (same "country" record), or any database whose records carry
// country.iso_code. It is safe for concurrent use, Close included.
type GeoIP struct {
	db atomic.Pointer[maxminddb.Reader]
	// typ is the database type from its metadata.
	typ string
}

// OpenGeoIP opens the database at path; Close releases it.
func OpenGeoIP(path string) (*GeoIP, error) {
	db, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening GeoIP database: %w", err)
	}
	g := &GeoIP{typ: db.Metadata.DatabaseType}
	g.db.Store(db)
	t := strings.ToLower(db.Metadata.DatabaseType)
	if !strings.Contains(t, "country") && !strings.Contains(t, "city") && !strings.Contains(t, "enterprise") {
		// Other vendors ship compatible country databases under other type names: accept
		// those whose records carry a country, refuse the rest (an ASN database, say),
		// which would silently match no country rule.
		var probe struct {
			Country struct {
				ISOCode string `maxminddb:"iso_code"`
			} `maxminddb:"country"`
		}
		found, n := false, 0
		for r := range db.Networks() {
			if r.Decode(&probe) == nil && probe.Country.ISOCode != "" {
				found = true
			}
			if n++; found || n >= 10000 {
				break
			}
		}
		if !found {
			db.Close()
			return nil, fmt.Errorf("GeoIP database of type %q holds no country records", db.Metadata.DatabaseType)
		}
	}
	return g, nil
}

// DatabaseType is the database's type from its metadata, e.g. "GeoLite2-Country".
func (g *GeoIP) DatabaseType() string { return g.typ }

// Country returns the ISO 3166-1 alpha-2 code (upper case) of the country the database
// places ip in ("country", where the user is, not "registered_country"), or "" when it
// has none or ip is invalid. IPv4-mapped IPv6 addresses are looked up as IPv4.
func (g *GeoIP) Country(ip netip.Addr) string {
	if g == nil || !ip.IsValid() {
		return ""
	}
	db := g.db.Load()
	if db == nil {
		return ""
	}
	var code string
	if err := db.Lookup(ip.WithZone("").Unmap()).DecodePath(&code, "country", "iso_code"); err != nil {
		return ""
	}
	if !isCountryCode(code) {
		return ""
	}
	return strings.ToUpper(code)
}

// Close releases the database: lookups after it find no country. Lookups still
// running (a request of the previous Caddy config, during a reload) stay safe: the
// memory map is not unmapped under them but released by the garbage collector once
// the last of them is done (maxminddb registers that cleanup).
func (g *GeoIP) Close() error {
	if g != nil {
		g.db.Store(nil)
	}
	return nil
}
