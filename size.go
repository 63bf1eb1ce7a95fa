package streamdownloads

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/dustin/go-humanize"
)

// Size is a number of bytes. In JSON it is a number, or a string with a unit such as
// "50GiB" or "500MB", as in the Caddyfile.
type Size int64

// ParseSize reads "50GiB", "500 MB", "1024" and the like.
func ParseSize(s string) (Size, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil || n > math.MaxInt64 {
		return 0, fmt.Errorf("%q is not a size (e.g. 500MB, 50GiB)", s)
	}
	return Size(n), nil
}

// UnmarshalJSON accepts a number of bytes or a size string.
func (z *Size) UnmarshalJSON(b []byte) error {
	var n int64
	if err := json.Unmarshal(b, &n); err == nil {
		*z = Size(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a size is a number of bytes or a string such as \"50GiB\"")
	}
	v, err := ParseSize(s)
	if err != nil {
		return err
	}
	*z = v
	return nil
}
