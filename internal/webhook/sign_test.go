package webhook_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/webhook"
	"github.com/apikeyd/apikeyd/internal/webhooksecret"
)

// The Standard Webhooks specification's own example.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignMatchesTheSpecification(t *testing.T) {
	key, err := webhooksecret.Parse(specSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := webhook.Sign(key, specID, specTimestamp, []byte(specBody)); got != specSignature {
		t.Errorf("Sign = %s, want %s", got, specSignature)
	}

	h := http.Header{}
	h.Set("webhook-id", specID)
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,bm90IGl0 "+specSignature) // a rotated secret's signature first
	at := time.Unix(specTimestamp, 0)
	if id, err := webhook.Verify(key, h, []byte(specBody), at.Add(time.Minute)); err != nil || id != specID {
		t.Errorf("Verify = %q %v", id, err)
	}
	if _, err := webhook.Verify(key, h, []byte(specBody+" "), at); err == nil {
		t.Error("a changed body verified")
	}
	if _, err := webhook.Verify(key, h, []byte(specBody), at.Add(6*time.Minute)); err == nil {
		t.Error("a stale timestamp verified")
	}
}
