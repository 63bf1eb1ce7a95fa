package hls

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func TestParseIV(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"0x0123456789abcdef0123456789ABCDEF", "0123456789abcdef0123456789abcdef"},
		{"0X0000000000000abc", "00000000000000000000000000000abc"},
		{"0x1", "00000000000000000000000000000001"},
		{"0x123", "00000000000000000000000000000123"},
		{"0x", ""}, {"1234", ""}, {"0xg1", ""}, {"0x" + strings.Repeat("f", 33), ""},
	}
	for _, tt := range tests {
		iv, err := parseIV(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("parseIV(%q) accepted", tt.in)
			}
			continue
		}
		if err != nil || hex.EncodeToString(iv[:]) != tt.want {
			t.Errorf("parseIV(%q) = %x, %v", tt.in, iv, err)
		}
	}
	if iv := sequenceIV(0x0102); hex.EncodeToString(iv[:]) != "00000000000000000000000000000102" {
		t.Errorf("sequenceIV = %x", iv)
	}
}

func TestDecryptInPlace(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef")
	iv := ivOf("0x42")
	for n := range 50 {
		clear := bytes.Repeat([]byte{byte(n)}, n)
		enc := encryptCBC(clear, key, iv)
		out, err := decryptInPlace(enc, key, iv)
		if err != nil || !bytes.Equal(out, clear) || &out[:1][0] != &enc[0] {
			t.Errorf("%d bytes: %v (in place: %v)", n, err, err == nil && &out[:1][0] == &enc[0])
		}
	}
	enc := encryptCBC([]byte("hello, a message of more than one block"), key, iv)
	if _, err := decryptInPlace(enc, key, ivOf("0x43")); err != nil {
		// A wrong IV only garbles the first block; padding is in the last.
		t.Errorf("wrong IV: %v", err)
	}
	enc = encryptCBC([]byte("hello"), key, iv)
	if _, err := decryptInPlace(enc, []byte("fedcba9876543210"), iv); err == nil || !strings.Contains(err.Error(), "bad PKCS#7 padding") {
		t.Errorf("wrong key: %v", err)
	}
	if _, err := decryptInPlace(nil, key, iv); err == nil {
		t.Error("empty body accepted")
	}
}
