// Package webhooksecret reads a Standard Webhooks signing secret
// (WEBHOOK_SECRET): whsec_ and the base64 of the HMAC key. It is a leaf, so
// the configuration can check the secret without the webhook dispatcher and
// its HTTP client.
package webhooksecret

import (
	"encoding/base64"
	"errors"
	"strings"
)

// Prefix starts every webhook secret.
const Prefix = "whsec_"

// MinBytes is the least key length a secret may decode to.
const MinBytes = 24

// errBadSecret never quotes the secret.
var errBadSecret = errors.New("must be whsec_ followed by the base64 of at least 24 random bytes")

// Parse returns the HMAC key of a Standard Webhooks secret: the
// base64-decoded part after whsec_.
func Parse(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		return nil, errBadSecret
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		if key, err = base64.RawStdEncoding.DecodeString(b64); err != nil {
			return nil, errBadSecret
		}
	}
	if len(key) < MinBytes {
		return nil, errBadSecret
	}
	return key, nil
}
