package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the settings table of docs/contract.md from the settings")

// contractPath is the document whose settings table is rendered from
// settings, between the two markers.
var contractPath = filepath.Join("..", "..", "docs", "contract.md")

const (
	tableBegin = "<!-- settings:begin -->\n"
	tableEnd   = "<!-- settings:end -->\n"
)

// TestContractSettingsTable: the settings table of docs/contract.md is
// settings itself (variable, flag, default, meaning), so that the
// documentation, -h and the code describe each setting once, alike.
// go test ./internal/config -run TestContractSettingsTable -update rewrites
// it.
func TestContractSettingsTable(t *testing.T) {
	doc, err := os.ReadFile(contractPath)
	if err != nil {
		t.Fatal(err)
	}
	begin, end := bytes.Index(doc, []byte(tableBegin)), bytes.Index(doc, []byte(tableEnd))
	if begin < 0 || end < begin {
		t.Fatalf("%s has no %q … %q markers around its settings table", contractPath, tableBegin, tableEnd)
	}
	begin += len(tableBegin)
	want := settingsTable()
	if string(doc[begin:end]) == want {
		return
	}
	if *update {
		rewritten := append(append(append([]byte{}, doc[:begin]...), want...), doc[end:]...)
		if err := os.WriteFile(contractPath, rewritten, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("the settings table of docs/contract.md differs from the settings of internal/config: run\n\tgo test ./internal/config -run TestContractSettingsTable -update\nwant:\n%s", want)
}

// settingsTable renders settings as a Markdown table.
func settingsTable() string {
	var b strings.Builder
	b.WriteString("| variable | flag | default | meaning |\n|---|---|---|---|\n")
	for _, s := range settings {
		def := "unset"
		if s.def != "" {
			def = "`" + s.def + "`"
		}
		b.WriteString("| `" + s.env + "` | `-" + s.flag + "` | " + def + " | " + markdownText(s.usage) + " |\n")
	}
	return b.String()
}

// codeWord is a word of a usage text that reads as code in Markdown: a
// setting's variable, a path, a URL, an address, an identifier such as
// last_used_at or whsec_.
var codeWord = regexp.MustCompile(`^[^\s]*[_/*:][^\s]*$`)

// markdownText formats a usage text (plain, for -h) as the cell of a
// Markdown table: code-like words in code spans, | escaped.
func markdownText(usage string) string {
	envs := map[string]bool{}
	for _, s := range settings {
		envs[s.env] = true
	}
	words := strings.Fields(usage)
	for i, w := range words {
		core := strings.TrimRight(strings.TrimLeft(w, "("), ",;:)")
		if core == "" {
			continue
		}
		if envs[core] || codeWord.MatchString(core) {
			lead := w[:strings.Index(w, core)]
			words[i] = lead + "`" + core + "`" + w[len(lead)+len(core):]
		}
	}
	return strings.ReplaceAll(strings.Join(words, " "), "|", `\|`)
}
