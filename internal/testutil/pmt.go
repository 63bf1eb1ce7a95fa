package testutil

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// PMT returns the elementary streams that the first PMT of an MPEG-TS file declares, one
// per entry in order, each as its stream type then its descriptors: a registration
// descriptor (tag 0x05) as 05"AC-3", any other as its tag and data in hex (6a00: an AC-3
// descriptor with no optional fields; 7f8002: a DVB extension descriptor, tag 0x80, data
// 02). For example "0x1b" (H.264), `0x06 05"Opus" 7f8002`. It is what make.sh says it
// wrote; ffprobe does not show stream types or descriptors.
func PMT(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pmtPID := -1
	for pos := 0; pos+188 <= len(b); pos += 188 {
		p := b[pos : pos+188]
		if p[0] != 0x47 {
			t.Fatalf("%s: no sync byte at %d", path, pos)
		}
		pid := int(p[1]&0x1f)<<8 | int(p[2])
		if p[1]&0x40 == 0 || p[3]&0x10 == 0 || (pid != 0 && pid != pmtPID) {
			continue // only the start of PSI sections
		}
		payload := p[4:]
		if p[3]&0x20 != 0 {
			payload = p[5+int(p[4]):]
		}
		sec := payload[1+int(payload[0]):] // after the pointer field
		n := int(sec[1]&0x0f)<<8 | int(sec[2])
		if 3+n > len(sec) || n < 9 {
			t.Fatalf("%s: PSI section of %d bytes does not fit one packet", path, n)
		}
		body := sec[8 : 3+n-4] // after the section header, without the CRC
		if pid == 0 {
			if len(body) >= 4 {
				pmtPID = int(body[2]&0x1f)<<8 | int(body[3]) // the first program's
			}
			continue
		}
		var streams []string
		info := int(body[2]&0x0f)<<8 | int(body[3])
		for es := body[4+info:]; len(es) >= 5; {
			l := int(es[3]&0x0f)<<8 | int(es[4])
			s := fmt.Sprintf("0x%02x", es[0])
			for d := es[5:min(5+l, len(es))]; len(d) >= 2 && 2+int(d[1]) <= len(d); d = d[2+int(d[1]):] {
				data := d[2 : 2+int(d[1])]
				if d[0] == 0x05 {
					s += fmt.Sprintf(" 05%q", data)
				} else {
					s += fmt.Sprintf(" %02x%x", d[0], data)
				}
			}
			streams = append(streams, s)
			es = es[min(5+l, len(es)):]
		}
		return streams
	}
	t.Fatalf("%s: no PAT and PMT", path)
	return nil
}

// PMTString is PMT joined by ", ".
func PMTString(t testing.TB, path string) string {
	t.Helper()
	return strings.Join(PMT(t, path), ", ")
}
