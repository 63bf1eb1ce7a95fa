// Package codec knows what the TS and fMP4 demuxers need of the codecs that are more than
// H.264, HEVC and AAC: AC-3 and E-AC-3 (ETSI TS 102 366), MPEG-1/2 audio layers I–III
// (ISO/IEC 11172-3, 13818-3), Opus (RFC 6716, RFC 7845, Opus in MPEG-TS, Opus in ISOBMFF)
// and AV1 (AV1-ISOBMFF): frame lengths and durations, the header fields a sample entry
// needs, and the decoder configuration boxes (dac3, dec3, dOps) built from what the
// elementary stream says, or read back from an fMP4 init section.
//
// Everything here is pure: functions of their arguments, no I/O, no panics on any input
// (each parser has a fuzz target). It is written by hand: mp4ff only encodes and decodes
// the dac3/dec3/dOps boxes from fields its caller must already know, and mediacommon reads
// only the first fields of these streams (AC-3 to lfeon, E-AC-3 to bsid, MPEG-1 audio
// headers, where it takes the reserved version for MPEG-1, refuses layer I and MPEG-2.5
// and sizes MPEG-2 layer III frames twice too long; Opus packet durations without the
// framing checks); neither makes dec3 from syncframes, checks CRCs, reads E-AC-3 JOC or
// Opus in MPEG-TS. mp4ff's av1 package does read av1C and sequence headers; the few
// lines AV1 needs here are ours too. The tests check all of it against both libraries
// where they read the same fields.
//
// For H.264 and HEVC (nal.go, h264.go, hevc.go) it holds what both demuxers need beyond
// mediacommon's SPS/PPS parsing: NAL unit classification (random access, parameter sets,
// AUD and filler data), where access units begin in a byte stream, which access units a
// decoder can start at or are sync samples (I slices, recovery point SEI, IRAP, RASL), and
// the picture order count LSBs of slice headers.
package codec
