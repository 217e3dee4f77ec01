package auth

import (
	"hash/maphash"
	"sync"
	"time"
)

// DefaultCacheSize is how many verified tokens a [JWT] verifier keeps
// unless [WithCache] says otherwise.
const DefaultCacheSize = 10000

// maxCachedToken bounds the length of a token the cache keeps: with the
// default size the tokens held take at most 40 MiB (a typical token of
// 1 KiB: 10 MiB). Longer tokens are verified every time.
const maxCachedToken = 4 << 10

// cacheEvictSample is how many entries a full cache looks at to choose
// the one to evict (as interceptors/ratelimit does).
const cacheEvictSample = 8

// tokenCache holds verified tokens, by the hash of the token string, each
// until its exp (plus the leeway, as the parser checks it) or until the
// key set changes (gen), whichever comes first. Only tokens that passed
// every check are stored: a failure is never cached.
type tokenCache struct {
	seed maphash.Seed
	max  int

	mu      sync.RWMutex
	entries map[uint64]*cacheEntry
}

type cacheEntry struct {
	token  string
	id     Identity
	expiry time.Time // the token is valid while now is before expiry
	gen    uint64    // the key set's generation the token was verified in
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{seed: maphash.MakeSeed(), max: max, entries: make(map[uint64]*cacheEntry)}
}

// get returns the identity of token if it was verified in generation gen
// and has not expired at now. The identity is the entry's: read only.
func (c *tokenCache) get(token string, now time.Time, gen uint64) (*Identity, bool) {
	h := maphash.String(c.seed, token)
	c.mu.RLock()
	e := c.entries[h]
	c.mu.RUnlock()
	// An entry is never changed once stored: reading it unlocked is safe.
	if e == nil || e.token != token || e.gen != gen || !now.Before(e.expiry) {
		return nil, false
	}
	return &e.id, true
}

// put stores a verified token. A full cache first evicts, of a sample of
// its entries, the stale ones (expired at now or of another generation)
// or else the one that expires first.
func (c *tokenCache) put(token string, id *Identity, expiry, now time.Time, gen uint64) {
	if len(token) > maxCachedToken || !now.Before(expiry) {
		return
	}
	h := maphash.String(c.seed, token)
	e := &cacheEntry{token: token, id: *id, expiry: expiry, gen: gen}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[h]; !ok && len(c.entries) >= c.max {
		var (
			victim uint64
			first  time.Time
			n      int
			stale  bool
		)
		for k, x := range c.entries {
			if x.gen != gen || !now.Before(x.expiry) {
				delete(c.entries, k)
				stale = true
			} else if n == 0 || x.expiry.Before(first) {
				victim, first = k, x.expiry
			}
			if n++; n == cacheEvictSample {
				break
			}
		}
		if !stale {
			delete(c.entries, victim)
		}
	}
	// A colliding hash of another token replaces it: the full compare in
	// get keeps either from passing for the other.
	c.entries[h] = e
}

// len returns the number of entries, for tests.
func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
