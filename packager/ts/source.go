package ts

import "io"

// sourceReader is the reader of a segment, keeping its error: an error of the reader
// itself (the origin, a size limit of the fetch) is passed on as it is, not as a
// malformed segment.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}
