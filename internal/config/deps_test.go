package config

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNothingItConfigures: the configuration checks each value with
// rules of its own or of small leaf packages, so a command that reads only
// the database settings (apikeyd migrate) does not link the JWT library,
// the HTTP stack, or the packages the settings configure.
func TestImportsNothingItConfigures(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the imports with")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := map[string]bool{
		"github.com/apikeyd/apikeyd/internal/auth":    true,
		"github.com/apikeyd/apikeyd/internal/webhook": true,
		"github.com/apikeyd/apikeyd/internal/httpx":   true,
		"github.com/golang-jwt/jwt/v5":                true,
		"net/http":                                    true,
	}
	for _, dep := range strings.Fields(string(out)) {
		if forbidden[dep] {
			t.Errorf("config imports %s", dep)
		}
	}
}
