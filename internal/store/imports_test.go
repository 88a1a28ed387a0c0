package store_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNoTransport: the store records events; what is sent, and how,
// is the webhook package's. Neither it nor the HTTP stack is linked into
// the store (so not into apikeyd migrate either).
func TestImportsNoTransport(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command:", err)
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := map[string]bool{
		"net/http": true,
		"github.com/apikeyd/apikeyd/internal/webhook":  true,
		"github.com/apikeyd/apikeyd/internal/httpx":    true,
		"github.com/apikeyd/apikeyd/internal/outbound": true,
	}
	for _, pkg := range strings.Fields(string(out)) {
		if forbidden[pkg] {
			t.Errorf("the store depends on %s", pkg)
		}
	}
}
