package config

import (
	"flag"
	"io"
	"strings"
	"testing"
)

// TestLeakSettings: the leak report settings are optional, checked, never
// echoed (a URL may hold a credential; the GitLab token is one), and the
// key set comes from one source only.
func TestLeakSettings(t *testing.T) {
	c, err := parse(Serve, nil)
	if err != nil || c.LeakKeysURL != nil || c.LeakKeysFile != "" || c.LeakRevocation != "" {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	c, err = parse(Serve, map[string]string{
		"LEAK_REPORT_KEYS_URL":  "https://api.github.com/meta/public_keys/secret_scanning",
		"LEAK_REVOCATION_TOKEN": "glrt-0123456789abcdef",
	})
	if err != nil || c.LeakKeysURL.Host != "api.github.com" || c.LeakRevocation != "glrt-0123456789abcdef" {
		t.Fatalf("%+v %v", c, err)
	}
	for name, env := range map[string]map[string]string{
		"RelativeURL": {"LEAK_REPORT_KEYS_URL": "keys.json?token=s3cr3t-value"},
		"ShortToken":  {"LEAK_REVOCATION_TOKEN": "s3cr3t-value"},
		"Both":        {"LEAK_REPORT_KEYS_URL": "https://x.example/keys", "LEAK_REPORT_KEYS_FILE": "keys.json"},
	} {
		_, err := parse(Serve, env)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: the error echoes the value: %v", name, err)
		}
	}
}

// TestScanScope: `apikeyd scan` reads the key prefix alone and takes paths
// after its flags.
func TestScanScope(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	env := map[string]string{"API_KEY_PREFIX": "acme_", "CORS_ORIGINS": "*"}
	c, err := Parse(fs, Scan, []string{"src", "-"}, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil || c.KeyPrefix != "acme_" || strings.Join(fs.Args(), " ") != "src -" {
		t.Fatalf("%+v %v %v", c, err, fs.Args())
	}
	if _, err := parse(Scan, map[string]string{"API_KEY_PREFIX": "BAD"}); err == nil {
		t.Error("scan accepted a bad prefix")
	}
	if _, err := parse(Scan, nil, "-database-url", "file:x.db"); err == nil {
		t.Error("scan took a database flag")
	}
}
