package config

import (
	"strings"
	"testing"
	"time"
)

const goodWebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8G"

func TestAuditAndWebhookDefaults(t *testing.T) {
	c, err := parse(Serve, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.AuditRetention != 90*24*time.Hour || c.WebhookURL != nil || c.WebhookKey != nil {
		t.Errorf("defaults: retention %v, webhook %v", c.AuditRetention, c.WebhookURL)
	}
	want := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
	if len(c.WebhookRetrySchedule) != len(want) {
		t.Fatalf("schedule %v", c.WebhookRetrySchedule)
	}
	for i := range want {
		if c.WebhookRetrySchedule[i] != want[i] {
			t.Errorf("schedule %v, want %v", c.WebhookRetrySchedule, want)
		}
	}
	c, err = parse(Serve, map[string]string{"WEBHOOK_URL": "https://hooks.example/apikeyd", "WEBHOOK_SECRET": goodWebhookSecret, "WEBHOOK_RETRY_SCHEDULE": "1s, 1m"})
	if err != nil || c.WebhookURL.Host != "hooks.example" || len(c.WebhookKey) < 24 || len(c.WebhookRetrySchedule) != 2 {
		t.Errorf("webhooks: %+v %v", c, err)
	}
}

// TestBadWebhookSettings: each is refused at start-up, naming its variable,
// never quoting a secret or a URL (which may carry credentials).
func TestBadWebhookSettings(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"SecretWithoutPrefix":  {"WEBHOOK_URL": "https://hooks.example/", "WEBHOOK_SECRET": strings.TrimPrefix(goodWebhookSecret, "whsec_")},
		"SecretTooShort":       {"WEBHOOK_URL": "https://hooks.example/", "WEBHOOK_SECRET": "whsec_c2hvcnQtc2VjcmV0"},
		"SecretNotBase64":      {"WEBHOOK_URL": "https://hooks.example/", "WEBHOOK_SECRET": "whsec_hunter2!hunter2!hunter2!hunter2!"},
		"URLNotHTTP":           {"WEBHOOK_URL": "ftp://user:hunter2@hooks.example/", "WEBHOOK_SECRET": goodWebhookSecret},
		"URLRelative":          {"WEBHOOK_URL": "/hooks", "WEBHOOK_SECRET": goodWebhookSecret},
		"URLWithoutSecret":     {"WEBHOOK_URL": "https://hooks.example/"},
		"SecretWithoutURL":     {"WEBHOOK_SECRET": goodWebhookSecret},
		"ScheduleNotDurations": {"WEBHOOK_RETRY_SCHEDULE": "5s,soon"},
		"ScheduleNegative":     {"WEBHOOK_RETRY_SCHEDULE": "-5s"},
		"ScheduleEmpty":        {"WEBHOOK_RETRY_SCHEDULE": ""},
		"RetentionTooShort":    {"AUDIT_RETENTION": "5m"},
		"RetentionNotDuration": {"AUDIT_RETENTION": "90 days"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parse(Serve, env)
			if err == nil {
				t.Fatal("accepted")
			}
			named := false
			for k := range env {
				named = named || strings.Contains(err.Error(), k)
			}
			if !named {
				t.Errorf("%v names none of %v", err, env)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "MfKQ9r8G") {
				t.Errorf("the error quotes a secret: %v", err)
			}
		})
	}
}
