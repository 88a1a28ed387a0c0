package apikeytest

import "testing"

func TestTyposAlwaysDiffer(t *testing.T) {
	for _, key := range []string{"atiru_abc0", "atiru_abc1", "atiru_abcx", "0"} {
		got := BadChecksum(key)
		if got == key || len(got) != len(key) || got[:len(got)-1] != key[:len(key)-1] {
			t.Errorf("BadChecksum(%q) = %q", key, got)
		}
		if got := Typo(key, 0); got == key || got[1:] != key[1:] {
			t.Errorf("Typo(%q, 0) = %q", key, got)
		}
	}
}
