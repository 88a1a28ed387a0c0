// Package apikeytest makes near-miss keys for tests: strings of a key's
// exact shape that must nevertheless be refused.
package apikeytest

// Typo returns key with the character at index i replaced by another
// base62 character: never key itself, whatever character was there.
func Typo(key string, i int) string {
	b := []byte(key)
	if b[i] == '0' {
		b[i] = '1'
	} else {
		b[i] = '0'
	}
	return string(b)
}

// BadChecksum returns key with its last checksum character changed, so the
// shape still matches and only the checksum is wrong.
func BadChecksum(key string) string {
	return Typo(key, len(key)-1)
}
