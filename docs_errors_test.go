package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/httpx"
)

// TestContractListsErrorCodes: the error-code table of docs/contract.md
// ("Errors") lists every code internal/apperr defines, with the status REST
// answers it with, and no other code.
func TestContractListsErrorCodes(t *testing.T) {
	t.Parallel()
	defined := errorCodes(t)
	if len(defined) < 10 {
		t.Fatalf("found %d codes in internal/apperr: is Code still declared as it was?", len(defined))
	}
	doc, err := os.ReadFile(filepath.Join("docs", "contract.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n### Errors\n")
	if !ok {
		t.Fatal(`docs/contract.md has no "### Errors" section`)
	}
	section, _, _ = strings.Cut(section, "\n#")
	row := regexp.MustCompile("(?m)^\\| `([A-Z_]+)` \\| ([0-9]{3}) \\|")
	documented := map[apperr.Code]bool{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		code := apperr.Code(m[1])
		documented[code] = true
		if !defined[code] {
			t.Errorf("docs/contract.md lists %s, which internal/apperr does not define", code)
			continue
		}
		if status, _ := strconv.Atoi(m[2]); status != httpx.Status(code) {
			t.Errorf("docs/contract.md gives %s the status %d; REST answers %d", code, status, httpx.Status(code))
		}
	}
	for code := range defined {
		if !documented[code] {
			t.Errorf("docs/contract.md's error table lacks %s", code)
		}
	}
}

// errorCodes returns the constants of type apperr.Code, read from the
// package's source.
func errorCodes(t *testing.T) map[apperr.Code]bool {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, filepath.Join("internal", "apperr"), func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[apperr.Code]bool{}
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			for _, decl := range f.Decls {
				gen, ok := decl.(*ast.GenDecl)
				if !ok || gen.Tok != token.CONST {
					continue
				}
				for _, spec := range gen.Specs {
					vs := spec.(*ast.ValueSpec)
					if typ, ok := vs.Type.(*ast.Ident); !ok || typ.Name != "Code" {
						continue
					}
					for _, v := range vs.Values {
						lit, ok := v.(*ast.BasicLit)
						if !ok || lit.Kind != token.STRING {
							t.Fatalf("%s: a Code that is not a string literal", fset.Position(v.Pos()))
						}
						s, err := strconv.Unquote(lit.Value)
						if err != nil {
							t.Fatal(err)
						}
						codes[apperr.Code(s)] = true
					}
				}
			}
		}
	}
	return codes
}
