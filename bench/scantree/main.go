// Command scantree writes a tree of mixed files for benchmarking `apikeyd
// scan` (see bench/scan): source-like text files of a few hundred bytes to a
// few hundred KiB in nested directories, minified one-line files, binary
// files, a .git directory, a few files over the scan's 10 MiB cap, and a
// handful of real keys and checksum-invalid look-alikes. The content is
// pseudo-random with a fixed seed, so every run writes the same tree.
package main

import (
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/apikeyd/apikeyd/internal/apikey"
)

func main() {
	dir := flag.String("dir", "", "directory to create (must not exist)")
	size := flag.Int64("size", 100<<20, "total bytes to write")
	keys := flag.Int("keys", 20, "real keys to plant")
	flag.Parse()
	if *dir == "" {
		log.Fatal("usage: scantree -dir DIR [-size BYTES] [-keys N]")
	}
	if err := os.Mkdir(*dir, 0o755); err != nil {
		log.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	f := apikey.NewFormat(apikey.DefaultPrefix)
	words := strings.Fields(`func return if else for range var const type struct interface map string int
		error nil true false package import http request response handler context value key token
		atiru_ prefix config secret user id name created expires list create revoke verify`)
	line := func(b *strings.Builder) {
		b.WriteString(strings.Repeat("\t", r.IntN(4)))
		for n := 3 + r.IntN(10); n > 0; n-- {
			b.WriteString(words[r.IntN(len(words))])
			b.WriteByte(' ')
		}
		b.WriteByte('\n')
	}
	var written int64
	write := func(name string, content []byte) {
		p := filepath.Join(*dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			log.Fatal(err)
		}
		written += int64(len(content))
	}
	// Two files over the cap and a .git directory: skipped by the scan,
	// read by cat and grep.
	big := make([]byte, 12<<20)
	for i := range big {
		big[i] = "abcdefgh ijklmnop\n"[r.IntN(18)]
	}
	write("data/dump-1.sql", big)
	write("data/dump-2.sql", big)
	for i := range 200 {
		write(fmt.Sprintf(".git/objects/%02x/%038x", i%256, i), big[:16<<10])
	}
	planted := 0
	for i := 0; written < *size; i++ {
		name := fmt.Sprintf("src/pkg%03d/sub%02d/file%05d", i%97, i%13, i)
		switch k := r.IntN(20); {
		case k == 0: // binary
			b := make([]byte, 4<<10+r.IntN(256<<10))
			for j := range b {
				b[j] = byte(r.UintN(256))
			}
			write(name+".bin", b)
		case k == 1: // minified: one long line
			var b strings.Builder
			for b.Len() < 64<<10+r.IntN(512<<10) {
				b.WriteString(words[r.IntN(len(words))])
				b.WriteByte(';')
			}
			write(name+".min.js", []byte(b.String()))
		default: // source
			var b strings.Builder
			target := 256 + r.IntN(64<<10)
			if r.IntN(50) == 0 {
				target = 1 << 20
			}
			for b.Len() < target {
				line(&b)
				switch r.IntN(4000) {
				case 0:
					if planted < *keys {
						b.WriteString("API_KEY=" + f.Generate() + "\n")
						planted++
					}
				case 1:
					k := f.Generate()
					c := "x"
					if strings.HasSuffix(k, c) {
						c = "y"
					}
					b.WriteString("example = \"" + k[:len(k)-1] + c + "\"\n") // a look-alike: the checksum fails
				}
			}
			write(name+".go", []byte(b.String()))
		}
	}
	fmt.Printf("%s: %d MiB, %d keys planted\n", *dir, written>>20, planted)
}
