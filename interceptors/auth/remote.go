package auth

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// remote is a JWK Set fetched from a URL by a goroutine of its own.
type remote struct {
	url        string
	client     *http.Client
	interval   time.Duration
	minRefresh time.Duration
	logger     *slog.Logger

	set  atomic.Pointer[keySet]
	kick chan struct{} // asks the goroutine for a fetch now
	// gen counts the fetches that removed or replaced a key: tokens
	// cached in an older generation are verified again.
	gen atomic.Uint64

	mu        sync.Mutex
	lastFetch time.Time     // start of the last fetch
	waiting   chan struct{} // closed when the fetch asked for ends; nil: none asked
	inflight  chan struct{} // closed when the running fetch ends; nil: none runs

	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

func newRemote(url string, hc *http.Client, interval, minRefresh time.Duration, logger *slog.Logger) *remote {
	ctx, cancel := context.WithCancel(context.Background())
	r := &remote{
		url: url, client: hc, interval: interval, minRefresh: minRefresh, logger: logger,
		kick:    make(chan struct{}, 1),
		waiting: make(chan struct{}), // the first fetch: calls before it wait
		ctx:     ctx, cancel: cancel,
		done: make(chan struct{}),
	}
	r.kick <- struct{}{}
	go r.run()
	return r
}

func (r *remote) close() {
	r.closeOnce.Do(func() {
		r.cancel()
		<-r.done
	})
}

func (r *remote) run() {
	defer close(r.done)
	t := time.NewTimer(r.interval)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.kick:
		case <-t.C:
		}
		r.refresh()
		t.Reset(r.interval)
	}
}

// refresh fetches the set once and wakes the calls waiting for it.
func (r *remote) refresh() {
	r.mu.Lock()
	done := r.waiting
	if done == nil {
		done = make(chan struct{})
	}
	r.waiting, r.inflight = nil, done
	r.lastFetch = time.Now()
	r.mu.Unlock()
	if err := r.fetch(); err != nil && r.ctx.Err() == nil {
		r.logger.LogAttrs(r.ctx, slog.LevelError, "auth: JWKS fetch failed; keeping the last key set",
			slog.String("jwks.url", r.url), slog.String("error", err.Error()))
	}
	r.mu.Lock()
	r.inflight = nil
	r.mu.Unlock()
	close(done)
}

func (r *remote) fetch() error {
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP status %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKS+1))
	if err != nil {
		return err
	}
	if len(data) > maxJWKS {
		return fmt.Errorf("JWKS larger than %d bytes", maxJWKS)
	}
	set, err := parseJWKS(data)
	if err != nil {
		return err
	}
	old := r.set.Load()
	r.set.Store(&set)
	if old != nil && !keptAll(*old, set) {
		r.gen.Add(1)
	}
	return nil
}

// keptAll reports whether every key of old is in set, unchanged, and a
// token without a kid finds the same key in both (the only key of a set
// of one is used for such tokens).
func keptAll(old, set keySet) bool {
	if len(old) == 1 && len(set) != 1 {
		return false
	}
	for kid, k := range old {
		n, ok := set[kid]
		if !ok || n.alg != k.alg {
			return false
		}
		eq, ok := n.key.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !eq.Equal(k.key) {
			return false
		}
	}
	return true
}

// lookup returns the key kid names. An unknown kid asks for a fetch,
// unless one started less than the minimum refresh interval ago (then it
// waits for that one if it still runs), and waits for it as long as ctx
// allows.
func (r *remote) lookup(ctx context.Context, kid string) (publicKey, error) {
	if set := r.set.Load(); set != nil {
		if k, ok := lookup(*set, kid); ok {
			return k, nil
		}
	}
	r.mu.Lock()
	var waiting chan struct{}
	switch {
	case r.waiting != nil:
		waiting = r.waiting
	case r.lastFetch.IsZero() || time.Since(r.lastFetch) >= r.minRefresh:
		waiting = make(chan struct{})
		r.waiting = waiting
		select {
		case r.kick <- struct{}{}:
		default:
		}
	case r.inflight != nil:
		waiting = r.inflight
	default:
		r.mu.Unlock()
		return publicKey{}, fmt.Errorf("%w: kid %q (no refresh: the last was less than %v ago)", ErrUnknownKey, kid, r.minRefresh)
	}
	r.mu.Unlock()
	select {
	case <-waiting:
	case <-ctx.Done():
		return publicKey{}, ctx.Err()
	case <-r.ctx.Done():
		return publicKey{}, ErrClosed
	}
	if set := r.set.Load(); set != nil {
		if k, ok := lookup(*set, kid); ok {
			return k, nil
		}
	}
	return publicKey{}, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
}
