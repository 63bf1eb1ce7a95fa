package streamdownloads

// The webhook options, notify_url and notify_secret (docs/webhooks.md): their checks and
// what sites sharing a storage_dir must agree on.

import (
	"fmt"
	"strings"
)

// minNotifySecret is notify_secret's least length.
const minNotifySecret = 16

// validateNotify checks notify_url and notify_secret, never quoting either (a URL may
// hold a token).
func (s *StreamDownloads) validateNotify() error {
	for i, u := range s.NotifyURL {
		if err := checkHTTPURL(u); err != nil || strings.ContainsAny(u, "{}") {
			return fmt.Errorf("notify_url: value %d of %d is not an absolute http:// or https:// URL", i+1, len(s.NotifyURL))
		}
	}
	switch {
	case len(s.NotifyURL) > 0 && s.NotifySecret == "":
		return fmt.Errorf("notify_url: needs notify_secret, the key receivers verify the Webhook-Signature with (unsigned webhooks are refused)")
	case len(s.NotifyURL) == 0 && s.NotifySecret != "":
		return fmt.Errorf("notify_secret: set without notify_url")
	case s.NotifySecret != "" && len(s.NotifySecret) < minNotifySecret:
		return fmt.Errorf("notify_secret: shorter than %d characters", minNotifySecret)
	}
	return nil
}

// notifyUse is what handlers sharing a storage_dir must agree on of webhooks.
func (s *StreamDownloads) notifyUse() notifyUse {
	if len(s.NotifyURL) == 0 {
		return notifyUse{}
	}
	return notifyUse{urls: strings.Join(s.NotifyURL, "\n"), secret: s.NotifySecret, publicURL: s.PublicURL}
}
