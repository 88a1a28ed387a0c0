package apikey

import (
	"crypto/sha256"
	"hash/crc32"
	"math/big"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/internal/apikey/apikeytest"
)

// refChecksum computes the checksum independently: CRC-32 (IEEE) as a big
// integer in base62, left-padded with '0' to six characters.
func refChecksum(body string) string {
	n := new(big.Int).SetUint64(uint64(crc32.ChecksumIEEE([]byte(body))))
	var digits []byte
	base := big.NewInt(62)
	for n.Sign() > 0 {
		var m big.Int
		n.DivMod(n, base, &m)
		digits = append([]byte{base62Alphabet[m.Int64()]}, digits...)
	}
	return strings.Repeat("0", checksumLen-len(digits)) + string(digits)
}

func TestGenerate(t *testing.T) {
	f := NewFormat(DefaultPrefix)
	seen := map[string]bool{}
	for range 1000 {
		k := f.Generate()
		if len(k) != len("atiru_")+38 || !strings.HasPrefix(k, "atiru_") {
			t.Fatalf("key %q has the wrong shape", k)
		}
		if got, want := k[len(k)-6:], refChecksum(k[:len(k)-6]); got != want {
			t.Fatalf("checksum %s, want %s", got, want)
		}
		if !f.WellFormed(k) {
			t.Fatalf("generated key not well formed")
		}
		if seen[k] {
			t.Fatal("duplicate key")
		}
		seen[k] = true
		if p := f.DisplayPrefix(k); len(p) != len("atiru_AbCd") || !strings.HasPrefix(k, p) {
			t.Fatalf("display prefix %q", p)
		}
	}
}

func TestGenerateUsesWholeAlphabet(t *testing.T) {
	f := NewFormat("t_")
	counts := map[byte]int{}
	for range 2000 {
		k := f.Generate()
		for i := 2; i < 2+secretLen; i++ {
			counts[k[i]]++
		}
	}
	if len(counts) != 62 {
		t.Fatalf("%d distinct characters, want 62", len(counts))
	}
	// 64,000 characters: each expected ~1032 times; a biased generator
	// (modulo without rejection) would skew the first 8 characters by ~25%.
	for c, n := range counts {
		if n < 850 || n > 1250 {
			t.Errorf("character %q appeared %d times, want about 1032", c, n)
		}
	}
}

func TestWellFormed(t *testing.T) {
	f := NewFormat(DefaultPrefix)
	k := f.Generate()
	cases := []struct {
		name string
		key  string
		want Outcome
	}{
		{"Valid", k, OutcomeOK},
		{"Empty", "", OutcomeMalformed},
		{"PrefixOnly", "atiru_", OutcomeMalformed},
		{"Truncated", k[:len(k)-1], OutcomeMalformed},
		{"Extended", k + "0", OutcomeMalformed},
		{"OtherPrefix", "other_" + k[6:], OutcomeMalformed},
		{"SecretTypo", apikeytest.Typo(k, 10), OutcomeBadChecksum},
		{"ChecksumTypo", apikeytest.Typo(k, len(k)-1), OutcomeBadChecksum},
		{"NonBase62", k[:10] + "-" + k[11:], OutcomeMalformed},
		{"NonASCII", k[:10] + "é" + k[12:], OutcomeMalformed},
		{"KnownVector", "atiru_" + strings.Repeat("0", 32) + refChecksum("atiru_"+strings.Repeat("0", 32)), OutcomeOK},
		// "zzzzzz" is 62^6-1, more than any CRC-32: it can match no checksum.
		{"ChecksumOverflow", k[:len(k)-6] + "zzzzzz", OutcomeBadChecksum},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := f.Check(c.key); got != c.want {
				t.Errorf("Check(%q) = %v, want %v", c.key, got, c.want)
			}
			if got := f.WellFormed(c.key); got != (c.want == OutcomeOK) {
				t.Errorf("WellFormed(%q) = %v", c.key, got)
			}
		})
	}
}

func TestValidPrefix(t *testing.T) {
	for p, want := range map[string]bool{
		"atiru_": true, "sk_": true, "a1_": true,
		"": false, "_": false, "atiru": false, "Atiru_": false, "at-iru_": false, "a_b_": false,
		strings.Repeat("a", 32) + "_": false,
	} {
		if got := ValidPrefix(p); got != want {
			t.Errorf("ValidPrefix(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestHash(t *testing.T) {
	// SHA-256 of "abc".
	if got := Hash("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("Hash = %s", got)
	}
	long := strings.Repeat("k", 200) // longer than any key: the fallback
	if got, want := Sum(long), sha256.Sum256([]byte(long)); got != want {
		t.Fatalf("Sum of a long string = %x, want %x", got, want)
	}
}

func TestCRC32String(t *testing.T) {
	for _, s := range []string{"", "a", "atiru_" + strings.Repeat("Z", 32), strings.Repeat("\xff", 70)} {
		if got, want := crc32String(s), crc32.ChecksumIEEE([]byte(s)); got != want {
			t.Errorf("crc32String(%q) = %08x, want %08x", s, got, want)
		}
	}
}

func TestVerificationChecksDoNotAllocate(t *testing.T) {
	f := NewFormat(DefaultPrefix)
	key := f.Generate()
	if n := testing.AllocsPerRun(100, func() { f.WellFormed(key) }); n != 0 {
		t.Errorf("WellFormed allocates %v times per call", n)
	}
	if n := testing.AllocsPerRun(100, func() { Sum(key) }); n != 0 {
		t.Errorf("Sum allocates %v times per call", n)
	}
}

func BenchmarkGenerate(b *testing.B) {
	f := NewFormat(DefaultPrefix)
	b.ReportAllocs()
	for b.Loop() {
		f.Generate()
	}
}

func BenchmarkWellFormed(b *testing.B) {
	f := NewFormat(DefaultPrefix)
	good := f.Generate()
	bad := apikeytest.BadChecksum(good)
	for _, c := range []struct{ name, key string }{{"Valid", good}, {"BadChecksum", bad}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f.WellFormed(c.key)
			}
		})
	}
}

func BenchmarkHash(b *testing.B) {
	key := NewFormat(DefaultPrefix).Generate()
	b.Run("Sum", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Sum(key)
		}
	})
	b.Run("Hex", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Hash(key)
		}
	})
}
