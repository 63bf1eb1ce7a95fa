// Package codec knows what the TS and fMP4 demuxers need of the codecs that are more than
// H.264, HEVC and AAC: AC-3 and E-AC-3 (ETSI TS 102 366), MPEG-1/2 audio layers I–III
// (ISO/IEC 11172-3, 13818-3), Opus (RFC 6716, RFC 7845, Opus in MPEG-TS, Opus in ISOBMFF)
// and AV1 (AV1-ISOBMFF): frame lengths and durations, the header fields a sample entry
// needs, and the decoder configuration boxes (dac3, dec3, dOps) built from what the
// elementary stream says, or read back from an fMP4 init section.
//
// Everything here is pure: functions of their arguments, no I/O, no panics on any input
// (each parser has a fuzz target). It is written by hand because neither mediacommon nor
// mp4ff parses these audio streams: mp4ff only encodes and decodes the boxes, from fields
// its caller must already know. mp4ff's av1 package does read av1C and sequence headers;
// the few lines AV1 needs here are ours too, and the tests check them against it.
package codec
