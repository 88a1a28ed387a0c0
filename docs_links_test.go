package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"iter"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// TestMarkdownLinksResolve: every relative link in the repository's Markdown
// files, [text](path) or [text](path#anchor), points to a file that exists
// and, where it names an anchor in a Markdown file, to a heading of that
// file (in GitHub's anchor style), so that moving or renaming a section
// cannot leave a link pointing at nothing.
func TestMarkdownLinksResolve(t *testing.T) {
	t.Parallel()
	docs, err := markdownFiles(".")
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) < 5 {
		t.Fatalf("found %d Markdown files: %v", len(docs), docs)
	}
	anchors := map[string]map[string]bool{}
	anchorsOf := func(path string) (map[string]bool, error) {
		if a, ok := anchors[path]; ok {
			return a, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		a := headingAnchors(b)
		anchors[path] = a
		return a, nil
	}
	links := 0
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range markdownLinks(b) {
			target, anchor, _ := strings.Cut(l.target, "#")
			if isExternal(target) {
				continue
			}
			links++
			path := doc
			if target != "" {
				unescaped, err := url.PathUnescape(target)
				if err != nil {
					t.Errorf("%s:%d: link %q: %v", doc, l.line, l.target, err)
					continue
				}
				path = filepath.Join(filepath.Dir(doc), filepath.FromSlash(unescaped))
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s:%d: link %q: no such file %s", doc, l.line, l.target, path)
					continue
				}
			}
			if anchor == "" || !strings.HasSuffix(path, ".md") {
				continue
			}
			a, err := anchorsOf(path)
			if err != nil {
				t.Errorf("%s:%d: link %q: %v", doc, l.line, l.target, err)
				continue
			}
			if !a[anchor] {
				t.Errorf("%s:%d: link %q: %s has no heading #%s", doc, l.line, l.target, path, anchor)
			}
		}
	}
	if links < 50 {
		t.Errorf("checked only %d relative links: is the link syntax still recognised?", links)
	}
}

// markdownFiles lists the .md files under root, skipping what is not the
// repository's own (dependencies, test data, hidden and generated
// directories).
func markdownFiles(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch name := d.Name(); {
			case path == root:
			case name == "testdata", name == "node_modules", name == "vendor", name == "artifacts", strings.HasPrefix(name, "."):
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".md") {
			files = append(files, path)
		}
		return nil
	})
	return files, err
}

type markdownLink struct {
	line   int
	target string
}

var (
	// inlineLink matches [text](target) and ![alt](target), with an
	// optional "title"; the text may hold one level of brackets.
	inlineLink = regexp.MustCompile(`\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]*)>?(?:\s+"[^"]*")?\s*\)`)
	// referenceLink matches a link reference definition, [label]: target.
	referenceLink = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$`)
	codeSpan      = regexp.MustCompile("`+[^`]*`+")
)

// markdownLinks returns the links of a Markdown document, outside code
// blocks and code spans.
func markdownLinks(doc []byte) []markdownLink {
	var links []markdownLink
	for n, line := range proseLines(doc) {
		line = codeSpan.ReplaceAllString(line, "")
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			links = append(links, markdownLink{n, m[1]})
		}
		if m := referenceLink.FindStringSubmatch(line); m != nil {
			links = append(links, markdownLink{n, m[1]})
		}
	}
	return links
}

// proseLines yields the lines of a Markdown document that are outside
// fenced code blocks, with their line numbers (from 1).
func proseLines(doc []byte) iter.Seq2[int, string] {
	return func(yield func(int, string) bool) {
		fence := ""
		s := bufio.NewScanner(bytes.NewReader(doc))
		s.Buffer(nil, 1<<20)
		for n := 1; s.Scan(); n++ {
			line := s.Text()
			if f := fenceOf(line); f != "" && (fence == "" || strings.HasPrefix(f, fence)) {
				if fence == "" {
					fence = f
				} else {
					fence = ""
				}
				continue
			}
			if fence == "" && !yield(n, line) {
				return
			}
		}
	}
}

// fenceOf returns the fence (``` or ~~~, as long as written) that line
// opens or closes, or "".
func fenceOf(line string) string {
	trimmed := strings.TrimLeft(line, " ")
	if len(line)-len(trimmed) > 3 {
		return ""
	}
	for _, c := range []string{"`", "~"} {
		if strings.HasPrefix(trimmed, c+c+c) {
			return strings.Repeat(c, len(trimmed)-len(strings.TrimLeft(trimmed, c)))
		}
	}
	return ""
}

var atxHeading = regexp.MustCompile(`^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$`)

// headingAnchors returns the anchors GitHub gives the headings of a
// Markdown document: the heading's text in lower case, without
// punctuation, spaces turned into hyphens; a repeated anchor gets -1, -2, …
func headingAnchors(doc []byte) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	for _, line := range proseLines(doc) {
		m := atxHeading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		slug := slugOf(m[1])
		if n := seen[slug]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			anchors[slug] = true
		}
		seen[slug]++
	}
	return anchors
}

var linkText = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)

// slugOf is GitHub's anchor of a heading's text.
func slugOf(heading string) string {
	text := linkText.ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isExternal reports whether a link target leaves the repository: a URL
// with a scheme (https:, mailto:) or a host.
func isExternal(target string) bool {
	u, err := url.Parse(target)
	return err == nil && (u.Scheme != "" || u.Host != "")
}
