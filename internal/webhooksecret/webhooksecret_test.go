package webhooksecret_test

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/internal/webhooksecret"
)

// specSecret is the Standard Webhooks specification's example secret.
const specSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestParseValid(t *testing.T) {
	for s, want := range map[string]string{
		specSecret: "31f290f6bf06298aab4f08d43c3f082cf648a362da2da4b0",
		"whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0":     hex.EncodeToString([]byte("secret-secret-secret-secret")),  // unpadded
		"whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LQ==": hex.EncodeToString([]byte("secret-secret-secret-secret-")), // padded
	} {
		key, err := webhooksecret.Parse(s)
		if err != nil || hex.EncodeToString(key) != want {
			t.Errorf("Parse(%q) = %x, %v; want %s", s, key, err, want)
		}
	}
}

func TestParseSecret(t *testing.T) {
	for name, s := range map[string]string{
		"NoPrefix":   "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"NotBase64":  "whsec_not*base64*at*all*not*base64*at*all",
		"TooShort":   "whsec_" + "c2hvcnQ=",
		"Empty":      "whsec_",
		"OtherCase":  "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"Whitespace": " " + specSecret,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := webhooksecret.Parse(s)
			if err == nil {
				t.Fatal("accepted")
			}
			if s != webhooksecret.Prefix && strings.Contains(err.Error(), s) {
				t.Error("the error quotes the secret")
			}
		})
	}
}
