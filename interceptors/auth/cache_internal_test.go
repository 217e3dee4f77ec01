package auth

import (
	"hash/maphash"
	"testing"
	"time"
)

// Two tokens with one hash: the full compare keeps either from passing
// for the other.
func TestCacheCollision(t *testing.T) {
	c := newTokenCache(10)
	now := time.Now()
	h := maphash.String(c.seed, "token-b")
	c.entries[h] = &cacheEntry{token: "token-a", id: Identity{Subject: "a"}, expiry: now.Add(time.Hour)}
	if id, ok := c.get("token-b", now, 0); ok {
		t.Errorf("token-b found as %q", id.Subject)
	}
	c.put("token-b", &Identity{Subject: "b"}, now.Add(time.Hour), now, 0)
	if id, ok := c.get("token-b", now, 0); !ok || id.Subject != "b" {
		t.Errorf("token-b: %q, %v", id.Subject, ok)
	}
	if _, ok := c.get("token-b", now, 1); ok {
		t.Error("entry of generation 0 found in generation 1")
	}
}
