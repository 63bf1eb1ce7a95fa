package id3

import (
	"bytes"
	"testing"
)

func TestSyncsafe(t *testing.T) {
	for _, tc := range []struct {
		n int
		b []byte
	}{
		{0, []byte{0, 0, 0, 0}},
		{200, []byte{0, 0, 1, 0x48}},
		{0x0fffffff, []byte{0x7f, 0x7f, 0x7f, 0x7f}},
	} {
		if got := AppendSyncsafe(nil, tc.n); !bytes.Equal(got, tc.b) {
			t.Errorf("AppendSyncsafe(%d) = % x, want % x", tc.n, got, tc.b)
		}
		if got, ok := Syncsafe(tc.b); !ok || got != tc.n {
			t.Errorf("Syncsafe(% x) = %d %v, want %d", tc.b, got, ok, tc.n)
		}
	}
	if _, ok := Syncsafe([]byte{0, 0, 0, 0x80}); ok {
		t.Error("a byte with its top bit set is taken as syncsafe")
	}
}

func TestTimestampTag(t *testing.T) {
	for _, ts := range []int64{0, 126000, 1<<33 - 1} {
		tag := TimestampTag(ts)
		n, err := TagLen(tag)
		if err != nil || n != len(tag) {
			t.Fatalf("TagLen = %d, %v; want %d", n, err, len(tag))
		}
		if got, ok := Timestamp(tag); !ok || got != ts {
			t.Errorf("Timestamp = %d %v, want %d", got, ok, ts)
		}
	}
	if !bytes.Equal(TimestampTag(1<<33+7), TimestampTag(7)) {
		t.Error("a timestamp of more than 33 bits is not wrapped")
	}
	for _, bad := range [][]byte{nil, []byte("ID3\x04\x00\x00\x00\x00\x00"), []byte("ID3\x04\x00\x00\x00\x00\x00\x80"), []byte("ID3\x05\x00\x00\x00\x00\x00\x00"), []byte("XYZ\x04\x00\x00\x00\x00\x00\x00")} {
		if _, err := TagLen(bad); err == nil {
			t.Errorf("TagLen(% x): no error", bad)
		}
	}
}

func FuzzTimestamp(f *testing.F) {
	f.Add(TimestampTag(126000))
	f.Add(append(TimestampTag(5), TimestampTag(6)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, err := TagLen(b); err == nil && n < HeaderLen {
			t.Fatalf("TagLen %d", n)
		}
		Timestamp(b)
	})
}
