package ts

import (
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		es   esInfo
		kind streamKind
		name string
	}{
		{esInfo{streamType: 0x1b}, kindH264, "H.264"},
		{esInfo{streamType: 0x24}, kindH265, "HEVC"},
		{esInfo{streamType: 0x0f}, kindAAC, "AAC"},
		{esInfo{streamType: 0x02}, kindVideoOther, "MPEG-2 video"},
		{esInfo{streamType: 0x03}, kindMPEGAudio, "MP3"},
		{esInfo{streamType: 0x04}, kindMPEGAudio, "MPEG-2 audio"},
		{esInfo{streamType: 0x81}, kindAC3, "AC-3"},
		{esInfo{streamType: 0x87}, kindAC3, "E-AC-3"},
		{esInfo{streamType: 0x06, desc: []byte{0x6a, 1, 0}}, kindAC3, "AC-3"},                           // DVB AC-3 descriptor
		{esInfo{streamType: 0x06, desc: []byte{0x0a, 4, 'e', 'n', 'g', 0, 0x7a, 0}}, kindAC3, "E-AC-3"}, // after a language descriptor
		{esInfo{streamType: 0x06, desc: []byte{0x05, 4, 'O', 'p', 'u', 's'}}, kindOpus, "Opus"},
		{esInfo{streamType: 0x06, desc: []byte{0x7b, 0}}, kindAudioOther, "DTS"}, // DVB DTS descriptor
		{esInfo{streamType: 0x82}, kindAudioOther, "DTS"},
		{esInfo{streamType: 0x11}, kindAudioOther, "LATM"},
		{esInfo{streamType: 0x06, desc: []byte{0x7f, 2, 0x15, 0}}, kindAudioOther, "AC-4"},                        // DVB AC-4 extension descriptor
		{esInfo{streamType: 0x06, desc: []byte{0x7f, 2, 0x80, 2, 0x05, 4, 'O', 'p', 'u', 's'}}, kindOpus, "Opus"}, // Opus with its channel config
		{esInfo{streamType: 0x06}, kindIgnored, "0x06"},                                                           // private data
		{esInfo{streamType: 0x06, desc: []byte{0x05, 4, 'I', 'D', '3', ' '}}, kindIgnored, "0x06"},                // ID3 in private data
		{esInfo{streamType: 0x15}, kindIgnored, "0x15"},                                                           // timed ID3
		{esInfo{streamType: 0x06, desc: []byte{0x6a, 9}}, kindIgnored, "0x06"},                                    // descriptor overruns: not trusted
	}
	for _, tc := range tests {
		kind, name := classify(tc.es)
		if kind != tc.kind || !strings.Contains(name, tc.name) {
			t.Errorf("classify(%+v) = %d %q, want %d, a name with %q", tc.es, kind, name, tc.kind, tc.name)
		}
	}
}
