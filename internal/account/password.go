package account

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are the cost parameters of argon2id.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over the memory
	Threads uint8  // lanes
	SaltLen uint32 // bytes of random salt
	KeyLen  uint32 // bytes of hash
}

// DefaultParams are the argon2id parameters of the OWASP Password Storage
// Cheat Sheet: 19 MiB of memory, 2 passes, 1 lane; with a 16-byte salt and a
// 32-byte hash.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Bounds on the parameters a stored hash may ask for, so that a corrupted
// or tampered row cannot make one login take gigabytes or minutes.
const (
	maxMemoryKiB = 256 * 1024
	maxTime      = 64
	minSaltLen   = 8
	maxSaltLen   = 64
	minKeyLen    = 16
	maxKeyLen    = 64
)

// b64 is the PHC string format's base64: standard alphabet, no padding,
// canonical (no stray bits in the last character).
var b64 = base64.RawStdEncoding.Strict()

// ErrMalformedHash is returned by VerifyPassword for a string that is not an
// argon2id hash in PHC format within the accepted parameter bounds.
var ErrMalformedHash = errors.New("account: malformed argon2id hash")

// HashPassword hashes password with argon2id and a fresh random salt, and
// encodes the result in the PHC string format, e.g.
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash> (base64 without padding).
func HashPassword(password string, p Params) string {
	salt := make([]byte, p.SaltLen)
	_, _ = rand.Read(salt) // never fails (crypto/rand, Go 1.24+)
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// VerifyPassword reports whether password matches encoded, a hash made by
// HashPassword (or by any argon2id implementation that writes PHC strings),
// with the parameters recorded in it. The hashes are compared in constant
// time. Returns ErrMalformedHash when encoded cannot be parsed.
func VerifyPassword(encoded, password string) (bool, error) {
	p, salt, want, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// parseHash reads a PHC string: $argon2id$v=19$m=M,t=T,p=P$salt$hash.
func parseHash(encoded string) (p Params, salt, key []byte, err error) {
	f := strings.Split(encoded, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" || f[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, ErrMalformedHash
	}
	m, t, threads, ok := parseCost(f[3])
	if !ok || m > maxMemoryKiB || t < 1 || t > maxTime || threads < 1 || threads > 255 || m < 8*threads {
		return p, nil, nil, ErrMalformedHash
	}
	salt, err = b64.DecodeString(f[4])
	if err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return p, nil, nil, ErrMalformedHash
	}
	key, err = b64.DecodeString(f[5])
	if err != nil || len(key) < minKeyLen || len(key) > maxKeyLen {
		return p, nil, nil, ErrMalformedHash
	}
	p = Params{Memory: uint32(m), Time: uint32(t), Threads: uint8(threads), SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	return p, salt, key, nil
}

// parseCost reads "m=M,t=T,p=P", exactly in that order.
func parseCost(s string) (m, t, p uint64, ok bool) {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return 0, 0, 0, false
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		v, found := strings.CutPrefix(parts[i], name)
		if !found || v == "" || (len(v) > 1 && v[0] == '0') {
			return 0, 0, 0, false
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return 0, 0, 0, false
		}
		vals[i] = n
	}
	return vals[0], vals[1], vals[2], true
}
