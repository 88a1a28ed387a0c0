package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"hash/crc32"
	"strings"
)

// The key format: <prefix><secret: 32 base62 chars><checksum: 6 base62 chars>.
const (
	base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	secretLen      = 32
	checksumLen    = 6
	// DisplayLen is how many secret characters key_prefix shows after the prefix.
	DisplayLen = 4
	// DefaultPrefix is the key prefix when none is configured.
	DefaultPrefix = "atiru_"
	// maxPrefixLen bounds the configurable prefix.
	maxPrefixLen = 32
)

// ValidPrefix reports whether p is a usable key prefix: lower-case letters and
// digits ending in '_', at most 32 bytes, at least one character before '_'.
func ValidPrefix(p string) bool {
	if len(p) < 2 || len(p) > maxPrefixLen || p[len(p)-1] != '_' {
		return false
	}
	for i := 0; i < len(p)-1; i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Format generates, checks and hashes keys with one prefix.
type Format struct {
	prefix string
}

// NewFormat returns the key format for prefix, which must satisfy ValidPrefix.
func NewFormat(prefix string) Format { return Format{prefix: prefix} }

// Prefix returns the key prefix, e.g. "atiru_".
func (f Format) Prefix() string { return f.prefix }

// KeyLen is the length in bytes of every key of this format.
func (f Format) KeyLen() int { return len(f.prefix) + secretLen + checksumLen }

// Generate returns a new random key: 32 base62 characters from crypto/rand
// (about 190 bits) after the prefix, then the checksum.
func (f Format) Generate() string {
	b := make([]byte, len(f.prefix), f.KeyLen())
	copy(b, f.prefix)
	b = AppendRandomBase62(b, secretLen)
	return string(appendChecksum(b, b))
}

// AppendRandomBase62 appends n base62 characters (0-9, A-Z, a-z) from
// crypto/rand to dst, each uniform: the secret part of a key, or of any
// other token the service issues.
func AppendRandomBase62(dst []byte, n int) []byte {
	// Rejection sampling keeps every character uniform: 248 = 4*62.
	var buf [64]byte
	for added := 0; added < n; {
		if _, err := rand.Read(buf[:]); err != nil {
			panic("apikey: crypto/rand failed: " + err.Error()) // rand.Read never fails on supported platforms.
		}
		for _, c := range buf {
			if c < 248 && added < n {
				dst = append(dst, base62Alphabet[c%62])
				added++
			}
		}
	}
	return dst
}

// appendChecksum appends the 6-character base62 CRC-32 (IEEE) of body to dst.
func appendChecksum(dst, body []byte) []byte {
	sum := crc32.ChecksumIEEE(body)
	var out [checksumLen]byte
	for i := checksumLen - 1; i >= 0; i-- {
		out[i] = base62Alphabet[sum%62]
		sum /= 62
	}
	return append(dst, out[:]...)
}

// LooksLikeKey reports whether s starts with this format's prefix: such a
// bearer credential is an API key, anything else a JWT.
func (f Format) LooksLikeKey(s string) bool { return strings.HasPrefix(s, f.prefix) }

// WellFormed reports whether key has this format's prefix, length, alphabet
// and a matching checksum. It touches no database and does not allocate, so
// mistyped and forged keys are refused at almost no cost.
func (f Format) WellFormed(key string) bool { return f.Check(key) == OutcomeOK }

// Check tells why key is not well formed: OutcomeMalformed for the wrong
// prefix, length or alphabet, OutcomeBadChecksum for a checksum that does not
// match, OutcomeOK otherwise.
func (f Format) Check(key string) Outcome {
	if len(key) != f.KeyLen() || !strings.HasPrefix(key, f.prefix) || !IsBase62(key[len(f.prefix):]) {
		return OutcomeMalformed
	}
	body := key[:len(key)-checksumLen]
	sum := crc32String(body)
	for i := len(key) - 1; i >= len(body); i-- {
		if key[i] != base62Alphabet[sum%62] {
			return OutcomeBadChecksum
		}
		sum /= 62
	}
	if sum != 0 {
		return OutcomeBadChecksum
	}
	return OutcomeOK
}

// crc32String is crc32.ChecksumIEEE([]byte(s)) without the conversion,
// which would allocate on every verification. A byte-at-a-time table loop
// over 40-odd bytes costs about as much as the library's wider loops.
func crc32String(s string) uint32 {
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = crc32.IEEETable[byte(crc)^s[i]] ^ crc>>8
	}
	return ^crc
}

// DisplayPrefix returns the part of key shown in listings: the prefix plus
// the first four secret characters.
func (f Format) DisplayPrefix(key string) string { return key[:len(f.prefix)+DisplayLen] }

// base62Chars marks the bytes of base62Alphabet: one load per character
// instead of three range checks.
var base62Chars = func() (t [256]bool) {
	for i := 0; i < len(base62Alphabet); i++ {
		t[base62Alphabet[i]] = true
	}
	return t
}()

// IsBase62 reports whether s is made of base62 characters only.
func IsBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		if !base62Chars[s[i]] {
			return false
		}
	}
	return true
}

// Digest is the SHA-256 of a key: what the verification cache is keyed by.
type Digest [sha256.Size]byte

// Sum returns the SHA-256 of key without allocating.
func Sum(key string) Digest {
	// A key fits the stack buffer; converting the string instead would put
	// a copy of the secret on the heap on every verification.
	var buf [maxPrefixLen + secretLen + checksumLen]byte
	if len(key) > len(buf) {
		return sha256.Sum256([]byte(key))
	}
	n := copy(buf[:], key)
	return sha256.Sum256(buf[:n])
}

// Hex returns d in lower-case hex: the form stored in the database.
func (d Digest) Hex() string { return hex.EncodeToString(d[:]) }

// Hash returns the hex SHA-256 of key: the only form in which a key is stored.
func Hash(key string) string { return Sum(key).Hex() }
