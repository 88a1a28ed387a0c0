package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/internal/apikey"
)

// TestScanCommand runs `apikeyd scan` as main does: the configured prefix
// (API_KEY_PREFIX or --api-key-prefix) is the one looked for, and the exit
// status is 1 for a find, 0 for none, 2 for an error.
func TestScanCommand(t *testing.T) {
	dir := t.TempDir()
	f := apikey.NewFormat("acme_")
	key := f.Generate()
	if err := os.WriteFile(filepath.Join(dir, "leak.txt"), []byte("token: "+key+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		args []string
		want exitStatus
		out  string
	}{
		{[]string{"scan", "--api-key-prefix", "acme_", dir}, 1, filepath.Join(dir, "leak.txt") + ":1: " + f.DisplayPrefix(key) + "…\n"},
		{[]string{"scan", dir}, 0, ""}, // the default prefix: nothing of it here
		{[]string{"scan", filepath.Join(dir, "nope")}, 2, ""},
		{[]string{"scan", "--api-key-prefix", "BAD", dir}, 2, ""},
	} {
		var out bytes.Buffer
		err := run(context.Background(), tc.args, &out, log)
		var got exitStatus
		if err != nil && !errors.As(err, &got) {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got != tc.want || out.String() != tc.out || strings.Contains(out.String(), key) {
			t.Fatalf("%v: exit %d, output %q; want %d, %q", tc.args, got, out.String(), tc.want, tc.out)
		}
	}
}
