package apikey

import (
	"crypto/sha256"
	"fmt"
	"reflect"
	"testing"
	"time"
)

func digest(i int) Digest { return sha256.Sum256(fmt.Appendf(nil, "key %d", i)) }

func TestCacheSizeCap(t *testing.T) {
	now := time.Now()
	for _, size := range []int{1, 10, 100, 1000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			c := newCache(size, time.Minute, size/2, time.Second)
			for i := range 10 * size {
				d := digest(i)
				_, _, gen, _ := c.get(d, now)
				c.put(d, gen, Principal{KeyID: fmt.Sprint(i)}, now.Add(time.Duration(i)), nil)
				_, _, gen, _ = c.get(digest(-i-1), now)
				c.putUnknown(digest(-i-1), gen, now, OutcomeUnknown)
			}
			keys, unknown := c.len()
			if keys > size || keys < size/2 {
				t.Errorf("%d keys cached, want at most %d (and not far fewer)", keys, size)
			}
			if unknown > size/2 {
				t.Errorf("%d unknown digests remembered, want at most %d", unknown, size/2)
			}
			// The newest entry is always there: eviction makes room for it.
			last := digest(10*size - 1)
			if _, found, _, _ := c.get(last, now); found != cacheHit {
				t.Errorf("the entry just stored is missing")
			}
		})
	}
}

func TestCacheEvictsTheEntryThatLapsesFirst(t *testing.T) {
	now := time.Now()
	// One shard of evictionSample entries: a full shard looks at them all.
	c := &cache{ttl: time.Minute, shards: make([]cacheShard, 1)}
	c.shards[0] = cacheShard{max: evictionSample, keys: map[Digest]cachedKey{}, unknown: map[Digest]refusal{}}
	c.live.Store(true)
	for i := range evictionSample {
		// Entry 3 lapses first.
		at := now.Add(time.Duration(i) * time.Second)
		if i == 3 {
			at = now.Add(-time.Hour)
		}
		c.put(digest(i), 0, Principal{}, at, nil)
	}
	c.put(digest(100), 0, Principal{}, now, nil)
	if _, found, _, _ := c.get(digest(3), now.Add(-2*time.Hour)); found == cacheHit {
		t.Error("the entry that lapses first was kept")
	}
	for _, i := range []int{0, 1, 2, 4, 5, 6, 7, 100} {
		if _, found, _, _ := c.get(digest(i), now.Add(-time.Minute)); found != cacheHit {
			t.Errorf("entry %d was dropped", i)
		}
	}
}

func TestCacheGenerationGuardsFills(t *testing.T) {
	now := time.Now()
	c := newCache(100, time.Minute, 10, time.Second)
	d := digest(1)

	_, _, gen, _ := c.get(d, now)
	c.evict(d) // a revocation lands while the lookup is at the database
	c.put(d, gen, Principal{KeyID: "k"}, now, nil)
	if _, found, _, _ := c.get(d, now); found != cacheMiss {
		t.Fatal("a lookup older than an eviction stored its answer")
	}

	_, _, gen, _ = c.get(d, now)
	c.purge()
	c.putUnknown(d, gen, now, OutcomeUnknown)
	if _, found, _, _ := c.get(d, now); found != cacheMiss {
		t.Fatal("a lookup older than a purge stored its answer")
	}

	_, _, gen, _ = c.get(d, now)
	c.put(d, gen, Principal{KeyID: "k"}, now, nil)
	if p, found, _, _ := c.get(d, now); found != cacheHit || p.KeyID != "k" {
		t.Fatal("a lookup with nothing in between did not store its answer")
	}
}

func TestCacheSuspended(t *testing.T) {
	now := time.Now()
	c := newCache(100, time.Minute, 10, time.Second)
	d := digest(1)
	_, _, gen, _ := c.get(d, now)
	c.put(d, gen, Principal{}, now, nil)

	c.suspend()
	if _, found, _, _ := c.get(d, now); found != cacheMiss {
		t.Fatal("a suspended cache served an entry")
	}
	_, _, gen, _ = c.get(d, now)
	c.put(d, gen, Principal{}, now, nil)
	if keys, _ := c.len(); keys != 0 {
		t.Fatal("a suspended cache stored an entry")
	}

	// A lookup that began while suspended stores nothing after resume.
	c.resume()
	c.put(d, gen, Principal{}, now, nil)
	if keys, _ := c.len(); keys != 0 {
		t.Fatal("a lookup from before resume stored its answer")
	}
	_, _, gen, _ = c.get(d, now)
	c.put(d, gen, Principal{}, now, nil)
	if _, found, _, _ := c.get(d, now); found != cacheHit {
		t.Fatal("a resumed cache does not cache")
	}
}

// TestNilCacheIsOff: a nil *cache (VERIFY_CACHE_SIZE=0) is off: every
// method is safe, stores nothing and finds nothing.
func TestNilCacheIsOff(t *testing.T) {
	var c *cache
	now := time.Now()
	d := digest(1)
	c.put(d, 0, Principal{KeyID: "k"}, now, nil)
	c.putUnknown(d, 0, now, OutcomeUnknown)
	if p, found, gen, why := c.get(d, now); found != cacheMiss || !reflect.DeepEqual(p, Principal{}) || gen != 0 || why != "" {
		t.Errorf("get on a nil cache = %+v, %v, %d, %q; want a plain miss", p, found, gen, why)
	}
	if keys, unknown := c.len(); keys != 0 || unknown != 0 {
		t.Errorf("len of a nil cache = %d, %d; want 0, 0", keys, unknown)
	}
	c.evict(d)
	c.purge()
	c.suspend()
	c.resume()
	if _, found, _, _ := c.get(d, now); found != cacheMiss {
		t.Error("a nil cache found an entry after resume")
	}
}
