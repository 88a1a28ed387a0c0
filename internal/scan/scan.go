// Package scan finds apikeyd API keys in files: `apikeyd scan`, for a
// pre-commit hook or a CI step. A key is reported only when its checksum
// holds, so look-alikes (examples, test fixtures, random text) are not, and
// it is reported by its display prefix and location, never in full.
package scan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/apikeyd/apikeyd/internal/apikey"
)

// MaxFileSize is the largest file scanned; larger ones are skipped (keys
// live in source and configuration, not in data dumps).
const MaxFileSize = 10 << 20

// binarySniffLen is how much of a file is looked at for a NUL byte, which
// marks it binary (git's rule).
const binarySniffLen = 8000

// Exit statuses of Run.
const (
	ExitNone  = 0 // no key found
	ExitFound = 1 // at least one key found
	ExitError = 2 // a path could not be read (keys found elsewhere are still printed)
)

// Finding is a key found at a place.
type Finding struct {
	Path    string
	Line    int
	Display string // the key's display prefix, e.g. atiru_AbCd
}

// String is the finding as printed: "path:line: atiru_AbCd…".
func (f Finding) String() string { return fmt.Sprintf("%s:%d: %s…", f.Path, f.Line, f.Display) }

// Run is `apikeyd scan [PATH…]`: it scans each path (a file, a directory
// walked recursively, or "-" for standard input; "." when none) for keys of
// the given prefix, prints each finding on stdout and each error on stderr,
// and returns ExitFound, ExitNone or ExitError.
func Run(ctx context.Context, paths []string, stdin io.Reader, stdout, stderr io.Writer, prefix string) int {
	if len(paths) == 0 {
		paths = []string{"."}
	}
	s := New(apikey.NewFormat(prefix))
	found, failed := false, false
	report := func(f Finding) { found = true; fmt.Fprintln(stdout, f) }
	fail := func(err error) { failed = true; fmt.Fprintln(stderr, "apikeyd scan:", err) }
	for _, p := range paths {
		if p == "-" {
			b, err := io.ReadAll(stdin)
			if err != nil {
				fail(fmt.Errorf("standard input: %w", err))
				continue
			}
			for _, f := range s.Scan("-", b) {
				report(f)
			}
			continue
		}
		s.Walk(ctx, p, report, fail)
	}
	switch {
	case failed:
		return ExitError
	case found:
		return ExitFound
	}
	return ExitNone
}

// Scanner finds the keys of one format.
type Scanner struct {
	format apikey.Format
	prefix []byte
}

// New returns a Scanner for keys of format f.
func New(f apikey.Format) *Scanner { return &Scanner{format: f, prefix: []byte(f.Prefix())} }

// Scan returns the keys in b, which is named path in the findings.
// It looks for the prefix with bytes.Index (vectorised in the standard
// library), checks only what follows one, and counts lines only up to
// a finding, so a file without keys costs little more than reading it.
func (s *Scanner) Scan(path string, b []byte) []Finding {
	var out []Finding
	keyLen := s.format.KeyLen()
	line, counted := 1, 0
	for off := 0; ; {
		i := bytes.Index(b[off:], s.prefix)
		if i < 0 {
			return out
		}
		at := off + i
		off = at + len(s.prefix)
		if at+keyLen > len(b) {
			return out
		}
		// Check allocates nothing for a string that fails early, but the
		// conversion would: convert only what can be a key.
		if !base62Run(b[off : at+keyLen]) {
			continue
		}
		key := string(b[at : at+keyLen])
		if !s.format.WellFormed(key) {
			continue
		}
		line += bytes.Count(b[counted:at], []byte{'\n'})
		counted = at
		out = append(out, Finding{Path: path, Line: line, Display: s.format.DisplayPrefix(key)})
		off = at + keyLen
	}
}

// base62Run reports whether b is all base62 characters.
func base62Run(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// Walk scans root, a file or a directory (recursively, without following
// the symbolic links in it), skipping .git directories, files over MaxFileSize and
// binary files. Files are read and scanned by several workers at once; the
// findings are reported in the walk's (lexical) order, from the calling
// goroutine.
func (s *Scanner) Walk(ctx context.Context, root string, report func(Finding), fail func(error)) {
	// A symbolic link named as the root is followed (WalkDir would not).
	if fi, err := os.Lstat(root); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		st, err := os.Stat(root)
		switch {
		case err != nil:
			fail(err)
			return
		case st.IsDir():
			root += string(filepath.Separator) // makes WalkDir read the target
		case st.Mode().IsRegular():
			_, r := s.scanFile(root, nil)
			if r.err != nil {
				fail(r.err)
			}
			for _, f := range r.findings {
				report(f)
			}
			return
		}
	}
	type job struct {
		path string
		done chan result
	}
	jobs := make(chan job, 256)
	order := make(chan chan result, 256)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			buf := make([]byte, 0, 64<<10)
			for j := range jobs {
				var r result
				buf, r = s.scanFile(j.path, buf)
				j.done <- r
			}
		})
	}
	go func() {
		defer close(order)
		defer close(jobs)
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if d.IsDir() {
				if d.Name() == ".git" && path != root {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil // symbolic links, devices, sockets
			}
			done := make(chan result, 1)
			order <- done
			jobs <- job{path, done}
			return nil
		})
		if err != nil {
			done := make(chan result, 1)
			done <- result{err: err}
			order <- done
		}
	}()
	for done := range order {
		r := <-done
		if r.err != nil {
			fail(r.err)
		}
		for _, f := range r.findings {
			report(f)
		}
	}
	wg.Wait()
}

type result struct {
	findings []Finding
	err      error
}

// scanFile scans one file, reusing buf, which it returns (grown if needed).
func (s *Scanner) scanFile(path string, buf []byte) ([]byte, result) {
	f, err := os.Open(path)
	if err != nil {
		return buf, result{err: err}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return buf, result{err: err}
	}
	if st.Size() > MaxFileSize {
		return buf, result{}
	}
	n := int(st.Size())
	if cap(buf) < n+1 {
		buf = make([]byte, 0, n+1)
	}
	// Read one byte more than the size: a file that grew meanwhile is read
	// up to the cap, never past it.
	b := buf[:min(n+1, MaxFileSize)]
	m, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return buf, result{err: err}
	}
	b = b[:m]
	if bytes.IndexByte(b[:min(len(b), binarySniffLen)], 0) >= 0 {
		return buf, result{}
	}
	return buf, result{findings: s.Scan(path, b)}
}
