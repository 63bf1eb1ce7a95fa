package hls

import (
	"bytes"
	"context"
	"errors"
)

// MaxSubtitleSegment bounds a subtitle (WebVTT) segment ReadSubtitle reads.
const MaxSubtitleSegment = 4 << 20

// ReadSubtitle reads a subtitle segment whole (its byte range, if any), with the
// Client's retries: WebVTT segments are small, and are read before the media.
func (c *Client) ReadSubtitle(ctx context.Context, s Segment) ([]byte, error) {
	if s.Key != nil {
		return nil, errors.New("hls: an encrypted subtitle segment")
	}
	var buf bytes.Buffer
	if _, err := c.getRange(ctx, s.URL, s.hosts, s.Range, &buf, sizeLimit{n: MaxSubtitleSegment, what: "a subtitle segment"}); err != nil {
		return nil, err
	}
	return bytes.Clone(buf.Bytes()), nil
}
