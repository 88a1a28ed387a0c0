package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestArrowsPointInward: the dependencies the layout promises (see
// CONTRIBUTING.md). The configuration links none of what it configures, so
// apikeyd migrate carries no JWT library, no HTTP stack and no Redis client; the store
// records events and leaves their sending to the webhook package; the
// domain (keys and organisations) knows no storage; the two faces (GraphQL and REST) and the
// dashboard never reach into one another or into the store.
func TestArrowsPointInward(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the dependencies with")
	}
	const mod = "github.com/apikeyd/apikeyd/"
	transport := []string{"net/http", mod + "internal/httpx", mod + "internal/webhook", mod + "internal/outbound"}
	for _, tc := range []struct {
		pkg       string
		forbidden []string
	}{
		{"internal/config", append(transport, mod+"internal/auth", "github.com/golang-jwt/jwt/v5", "github.com/redis/go-redis/v9")},
		{"internal/store", transport},
		{"internal/apikey", []string{mod + "internal/store", "github.com/redis/go-redis/v9"}},
		{"internal/org", append(transport, mod+"internal/store", "github.com/redis/go-redis/v9")},
		{"graph", []string{mod + "internal/rest", mod + "internal/store"}},
		{"internal/rest", []string{mod + "graph", mod + "internal/store"}},
		{"web", []string{mod + "internal/rest", mod + "graph", mod + "internal/store"}},
	} {
		out, err := exec.Command(goTool, "list", "-deps", "./"+tc.pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps ./%s: %v", tc.pkg, err)
		}
		deps := map[string]bool{}
		for _, d := range strings.Fields(string(out)) {
			deps[d] = true
		}
		for _, f := range tc.forbidden {
			if deps[f] {
				t.Errorf("%s depends on %s", tc.pkg, f)
			}
		}
	}
}
