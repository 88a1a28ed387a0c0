package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sign returns the webhook-signature value of one attempt:
// v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">.
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Tolerance is how far a receiver accepts a webhook-timestamp from its clock.
const Tolerance = 5 * time.Minute

// Verify checks a received webhook as a receiver should: the timestamp within
// Tolerance of now and one of the space-separated v1 signatures matching,
// compared in constant time. It returns the webhook-id.
func Verify(key []byte, h http.Header, body []byte, now time.Time) (string, error) {
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	if id == "" || ts == "" {
		return "", errors.New("webhook: missing webhook-id or webhook-timestamp")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", errors.New("webhook: bad webhook-timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > Tolerance || d < -Tolerance {
		return "", errors.New("webhook: timestamp out of tolerance")
	}
	want := Sign(key, id, sec, body)
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return id, nil
		}
	}
	return "", errors.New("webhook: no matching signature")
}
