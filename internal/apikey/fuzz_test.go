package apikey_test

import (
	"math/big"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apikey/apikeytest"
)

// refCRC32 is CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) computed
// bit by bit, independently of hash/crc32's tables.
func refCRC32(b []byte) uint32 {
	crc := ^uint32(0)
	for _, c := range b {
		crc ^= uint32(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xEDB88320
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}

// refWellFormed is the key format of docs/contract.md ("API keys"), written
// independently: prefix, then 32 + 6 characters of 0-9A-Za-z, the last 6
// being the CRC-32 of everything before them in base62 (math/big),
// left-padded with 0.
func refWellFormed(prefix, key string) bool {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok || len(rest) != 38 {
		return false
	}
	for _, r := range rest {
		if !strings.ContainsRune(alphabet, r) {
			return false
		}
	}
	// big.Int.Text(62) writes digits as 0-9a-zA-Z; the key format uses 0-9A-Za-z.
	text := new(big.Int).SetUint64(uint64(refCRC32([]byte(key[:len(key)-6])))).Text(62)
	sum := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return r
	}, text)
	return key[len(key)-6:] == strings.Repeat("0", 6-len(sum))+sum
}

// FuzzWellFormed: Format.WellFormed agrees with an independent reference on
// any string, for the default prefix and another one, and never panics.
// Seeds: f.Add below and testdata/fuzz/FuzzWellFormed.
func FuzzWellFormed(f *testing.F) {
	formats := []apikey.Format{apikey.NewFormat(apikey.DefaultPrefix), apikey.NewFormat("sk2_")}
	for i, fm := range formats {
		k := fm.Generate()
		f.Add(k, uint8(i))
		f.Add(k[:len(k)-1]+"0", uint8(i))
		f.Add(strings.ToUpper(k), uint8(i))
		f.Add(k+"x", uint8(i))
	}
	f.Add("atiru_00000000000000000000000000000000000000", uint8(0))
	f.Add("atiru_", uint8(0))
	f.Add("", uint8(1))
	f.Fuzz(func(t *testing.T, key string, which uint8) {
		fm := formats[int(which)%len(formats)]
		got, want := fm.WellFormed(key), refWellFormed(fm.Prefix(), key)
		if got != want {
			t.Fatalf("WellFormed(%q) = %v, reference says %v", key, got, want)
		}
		if got {
			if !fm.LooksLikeKey(key) || len(key) != fm.KeyLen() || fm.DisplayPrefix(key) != key[:len(fm.Prefix())+apikey.DisplayLen] {
				t.Fatalf("well-formed %q: LooksLikeKey, KeyLen or DisplayPrefix disagree", key)
			}
		}
	})
}

// TestReferenceAcceptsGeneratedKeys keeps the reference honest: it accepts
// what Generate makes and refuses a changed checksum.
func TestReferenceAcceptsGeneratedKeys(t *testing.T) {
	fm := apikey.NewFormat(apikey.DefaultPrefix)
	for range 200 {
		k := fm.Generate()
		if !refWellFormed(fm.Prefix(), k) {
			t.Fatalf("the reference refuses %q", k)
		}
		if refWellFormed(fm.Prefix(), apikeytest.BadChecksum(k)) {
			t.Fatalf("the reference accepts a bad checksum")
		}
	}
}
