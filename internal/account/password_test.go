package account

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// cheap are argon2id parameters that make a test hash take microseconds.
var cheap = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashPassword(t *testing.T) {
	const password = "correct horse battery staple"
	encoded := HashPassword(password, DefaultParams)

	// OWASP's argon2id costs, a 16-byte salt and a 32-byte hash, in PHC format.
	phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !phc.MatchString(encoded) {
		t.Fatalf("hash %q is not an argon2id PHC string with the OWASP parameters", encoded)
	}
	if ok, err := VerifyPassword(encoded, password); err != nil || !ok {
		t.Fatalf("the right password: ok %v, err %v", ok, err)
	}
	for _, wrong := range []string{"", "correct horse battery stapl", "correct horse battery staple ", "Correct horse battery staple"} {
		if ok, err := VerifyPassword(encoded, wrong); err != nil || ok {
			t.Errorf("wrong password %q: ok %v, err %v", wrong, ok, err)
		}
	}
	if again := HashPassword(password, DefaultParams); again == encoded {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
}

// TestVerifyReferenceHashes checks hashes made by the argon2 reference
// implementation's command-line tool, e.g.
// printf %s 'correct horse battery staple' | argon2 apikeyd-test-salt -id -t 2 -k 19456 -p 1 -l 32 -e
func TestVerifyReferenceHashes(t *testing.T) {
	for _, encoded := range []string{
		"$argon2id$v=19$m=19456,t=2,p=1$YXBpa2V5ZC10ZXN0LXNhbHQ$1b9VwhkaNG8WQtx5q6t29wcPSzFtZD4qOISR+N9zhfM",
		"$argon2id$v=19$m=64,t=1,p=2$YXBpa2V5ZC10ZXN0LXNhbHQ$cLf4A8Uc56vXY62mJ3MjOQ",
	} {
		if ok, err := VerifyPassword(encoded, "correct horse battery staple"); err != nil || !ok {
			t.Errorf("%s: ok %v, err %v", encoded, ok, err)
		}
		if ok, err := VerifyPassword(encoded, "correct horse battery stapler"); err != nil || ok {
			t.Errorf("%s with a wrong password: ok %v, err %v", encoded, ok, err)
		}
	}
}

// TestVerifyTamperedHash: a changed hash, salt or parameter never verifies;
// what no longer parses is ErrMalformedHash.
func TestVerifyTamperedHash(t *testing.T) {
	const password = "correct horse battery staple"
	const good = "$argon2id$v=19$m=64,t=1,p=2$YXBpa2V5ZC10ZXN0LXNhbHQ$cLf4A8Uc56vXY62mJ3MjOQ"

	mismatched := map[string]string{
		"HashChanged":    strings.Replace(good, "$cLf4", "$cLf5", 1),
		"SaltChanged":    strings.Replace(good, "$YXBp", "$YXBq", 1),
		"MemoryChanged":  strings.Replace(good, "m=64", "m=72", 1),
		"TimeChanged":    strings.Replace(good, "t=1", "t=2", 1),
		"ThreadsChanged": strings.Replace(good, "p=2", "p=1", 1),
		"HashShortened":  good[:len(good)-4],
	}
	for name, encoded := range mismatched {
		t.Run(name, func(t *testing.T) {
			if ok, err := VerifyPassword(encoded, password); ok || err != nil && !errors.Is(err, ErrMalformedHash) {
				t.Errorf("%s: ok %v, err %v; want false", encoded, ok, err)
			}
		})
	}

	malformed := map[string]string{
		"Empty":            "",
		"Argon2i":          strings.Replace(good, "argon2id", "argon2i", 1),
		"Version16":        strings.Replace(good, "v=19", "v=16", 1),
		"NoVersion":        strings.Replace(good, "$v=19", "", 1),
		"ExtraField":       good + "$",
		"Padded":           good + "==",
		"NotBase64":        strings.Replace(good, "$cLf4", "$cL*4", 1),
		"ParamsReordered":  strings.Replace(good, "m=64,t=1,p=2", "t=1,m=64,p=2", 1),
		"ParamMissing":     strings.Replace(good, "m=64,t=1,p=2", "m=64,t=1", 1),
		"LeadingZero":      strings.Replace(good, "m=64", "m=064", 1),
		"ZeroTime":         strings.Replace(good, "t=1", "t=0", 1),
		"ZeroThreads":      strings.Replace(good, "p=2", "p=0", 1),
		"TooManyThreads":   strings.Replace(good, "p=2", "p=256", 1),
		"MemoryBelow8p":    strings.Replace(good, "m=64", "m=15", 1),
		"HugeMemory":       strings.Replace(good, "m=64", "m=4194304", 1),
		"HugeTime":         strings.Replace(good, "t=1", "t=1000", 1),
		"ShortSalt":        strings.Replace(good, "YXBpa2V5ZC10ZXN0LXNhbHQ", "YXBp", 1),
		"NegativeMemory":   strings.Replace(good, "m=64", "m=-64", 1),
		"NonCanonicalBits": strings.Replace(good, "OQ", "OR", 1),
	}
	for name, encoded := range malformed {
		t.Run(name, func(t *testing.T) {
			if ok, err := VerifyPassword(encoded, password); ok || !errors.Is(err, ErrMalformedHash) {
				t.Errorf("%q: ok %v, err %v; want ErrMalformedHash", encoded, ok, err)
			}
		})
	}
}

func TestHashPasswordParams(t *testing.T) {
	encoded := HashPassword("hunter2hunter2", cheap)
	if !strings.HasPrefix(encoded, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash %q does not record its parameters", encoded)
	}
	p, salt, key, err := parseHash(encoded)
	if err != nil || p != cheap || len(salt) != 16 || len(key) != 32 {
		t.Errorf("parsed %+v, %d-byte salt, %d-byte hash, err %v", p, len(salt), len(key), err)
	}
}
