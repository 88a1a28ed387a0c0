package scan_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apikey/apikeytest"
	"github.com/apikeyd/apikeyd/internal/scan"
)

// writeFile writes content to dir/name, creating its directories.
func writeFile(t *testing.T, dir, name string, content []byte) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fixtureTree builds a tree holding real keys in two text files, and keys
// where the scanner must not look or report: a look-alike with a bad
// checksum, a key of another prefix, keys under .git, in a binary file and in
// a file over the size cap.
func fixtureTree(t *testing.T, f apikey.Format) (dir string, keys []string) {
	t.Helper()
	dir = t.TempDir()
	k1, k2, k3 := f.Generate(), f.Generate(), f.Generate()
	other := apikey.NewFormat("other_").Generate()
	writeFile(t, dir, "config/app.env", []byte("# settings\nDEBUG=1\nAPI_KEY="+k1+"\n"))
	writeFile(t, dir, "src/main.go", []byte("package main\n\nconst a = \""+k2+"\" // and "+k3+"\nconst b = \""+apikeytest.BadChecksum(k1)+"\"\nconst c = \""+other+"\"\n"))
	writeFile(t, dir, "docs/example.md", []byte("Keys look like "+f.Prefix()+"AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ab or "+apikeytest.BadChecksum(k2)+".\n"))
	writeFile(t, dir, ".git/objects/ab/cdef", []byte(k1+"\n"))
	writeFile(t, dir, "bin/tool", append([]byte{0x7f, 'E', 'L', 'F', 0}, []byte(k1)...))
	big := bytes.Repeat([]byte("x"), scan.MaxFileSize)
	writeFile(t, dir, "data/dump.sql", append(big, []byte("\n"+k1+"\n")...))
	return dir, []string{k1, k2, k3}
}

func TestScanFixtureTree(t *testing.T) {
	f := apikey.NewFormat(apikey.DefaultPrefix)
	dir, keys := fixtureTree(t, f)
	var out, errs bytes.Buffer
	code := scan.Run(context.Background(), []string{dir}, nil, &out, &errs, f.Prefix())
	if code != scan.ExitFound {
		t.Fatalf("exit %d, want %d; stderr %s", code, scan.ExitFound, errs.String())
	}
	want := strings.Join([]string{
		filepath.Join(dir, "config/app.env") + ":3: " + f.DisplayPrefix(keys[0]) + "…",
		filepath.Join(dir, "src/main.go") + ":3: " + f.DisplayPrefix(keys[1]) + "…",
		filepath.Join(dir, "src/main.go") + ":3: " + f.DisplayPrefix(keys[2]) + "…",
	}, "\n") + "\n"
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	for _, k := range keys {
		if strings.Contains(out.String(), k) || strings.Contains(errs.String(), k) {
			t.Fatal("the output holds a whole key")
		}
	}
	if errs.Len() != 0 {
		t.Fatalf("stderr: %s", errs.String())
	}
}

func TestScanExitStatus(t *testing.T) {
	f := apikey.NewFormat(apikey.DefaultPrefix)
	clean := t.TempDir()
	writeFile(t, clean, "a.txt", []byte("nothing "+apikeytest.BadChecksum(f.Generate())+" here\n"))
	key := f.Generate()

	for _, tc := range []struct {
		name  string
		paths []string
		stdin string
		want  int
		out   string
	}{
		{"NoneFound", []string{clean}, "", scan.ExitNone, ""},
		{"StdinFound", []string{"-"}, "line one\n\nx=" + key, scan.ExitFound, "-:3: " + f.DisplayPrefix(key) + "…\n"},
		{"StdinLookAlike", []string{"-"}, apikeytest.BadChecksum(key), scan.ExitNone, ""},
		{"MissingPath", []string{filepath.Join(clean, "nope")}, "", scan.ExitError, ""},
		{"ErrorWinsOverFound", []string{"-", filepath.Join(clean, "nope")}, key, scan.ExitError, "-:1: " + f.DisplayPrefix(key) + "…\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			code := scan.Run(context.Background(), tc.paths, strings.NewReader(tc.stdin), &out, &errs, f.Prefix())
			if code != tc.want || out.String() != tc.out {
				t.Fatalf("exit %d, output %q; want %d, %q (stderr %s)", code, out.String(), tc.want, tc.out, errs.String())
			}
			if (code == scan.ExitError) != (errs.Len() > 0) {
				t.Fatalf("exit %d with stderr %q", code, errs.String())
			}
		})
	}
}

// TestScanOtherPrefix checks that the configured prefix is the one looked for.
func TestScanOtherPrefix(t *testing.T) {
	f := apikey.NewFormat("acme_")
	key := f.Generate()
	var out bytes.Buffer
	stdin := apikey.NewFormat(apikey.DefaultPrefix).Generate() + " " + key
	if code := scan.Run(context.Background(), []string{"-"}, strings.NewReader(stdin), &out, &out, "acme_"); code != scan.ExitFound || out.String() != "-:1: "+f.DisplayPrefix(key)+"…\n" {
		t.Fatalf("exit %d, output %q", code, out.String())
	}
}

// BenchmarkScan measures the scan of text without keys but with many
// prefix look-alikes, per byte.
func BenchmarkScan(b *testing.B) {
	f := apikey.NewFormat(apikey.DefaultPrefix)
	line := []byte("func handler(w http.ResponseWriter, r *http.Request) { // atiru_ is our prefix\n")
	text := bytes.Repeat(line, (1<<20)/len(line))
	s := scan.New(f)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if len(s.Scan("x", text)) != 0 {
			b.Fatal("found a key")
		}
	}
}

// TestScanSymlinks: a path named on the command line is followed when it is
// a symbolic link; links met while walking a directory are not (they may
// lead out of the tree, or round in a loop).
func TestScanSymlinks(t *testing.T) {
	f := apikey.NewFormat(apikey.DefaultPrefix)
	dir, keys := fixtureTree(t, f)
	outside := t.TempDir()
	writeFile(t, outside, "secret.env", []byte("K="+f.Generate()+"\n"))
	if err := os.Symlink(outside, filepath.Join(dir, "link-out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.env"), filepath.Join(dir, "link-file")); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	if code := scan.Run(context.Background(), []string{dir}, nil, &out, &errs, f.Prefix()); code != scan.ExitFound || strings.Count(out.String(), "\n") != len(keys) {
		t.Fatalf("exit %d, output:\n%s", code, out.String())
	}
	for _, p := range []string{filepath.Join(dir, "link-out"), filepath.Join(dir, "link-file")} {
		out.Reset()
		if code := scan.Run(context.Background(), []string{p}, nil, &out, &errs, f.Prefix()); code != scan.ExitFound || strings.Count(out.String(), "\n") != 1 {
			t.Fatalf("%s: exit %d, output %q, stderr %q", p, code, out.String(), errs.String())
		}
	}
}
