package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"

	"github.com/grpckit/grpckit/resolver"
)

// ErrBadOption is returned (wrapped) for an invalid option or argument.
var ErrBadOption = errors.New("etcd: bad option")

// errCompacted makes the watch loop reload at once.
var errCompacted = errors.New("etcd: watch revision compacted")

// NewBuilder returns a gRPC resolver builder for "etcd:///<service>"
// targets that reads the service's instances from client. Pass it to a
// client with grpc.WithResolvers (client.WithDialOptions); grpckit does not
// register it globally, since it needs a client (call
// google.golang.org/grpc/resolver.Register at startup to resolve by name).
// The client stays the caller's: close it after the connections using it.
func NewBuilder(client *clientv3.Client, opts ...BuilderOption) (*resolver.Builder, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", ErrBadOption)
	}
	cfg := builderConfig{
		common:   common{prefix: DefaultPrefix, logger: slog.Default()},
		scheme:   Scheme,
		timeout:  5 * time.Second,
		progress: 5 * time.Second,
	}
	for _, o := range opts {
		o.applyBuilder(&cfg)
	}
	if err := validPrefix(cfg.prefix); err != nil {
		return nil, err
	}
	if cfg.timeout <= 0 || cfg.progress <= 0 {
		return nil, fmt.Errorf("%w: request timeout and progress interval must be positive", ErrBadOption)
	}
	src := &source{c: client, cfg: cfg}
	core := append([]resolver.Option{resolver.WithLogger(cfg.logger)}, cfg.core...)
	return resolver.NewBuilder(cfg.scheme, src, core...)
}

// source is the etcd resolver.Source.
type source struct {
	c   *clientv3.Client
	cfg builderConfig
}

// Watch loads the service's keys, then watches them from the next revision,
// turning events into changes. It reloads at once after a compaction and
// after a backoff after any other failure.
func (s *source) Watch(ctx context.Context, t resolver.Target, u resolver.Updater) error {
	prefix := s.cfg.prefix + t.Service + "/"
	// known holds the last good endpoint per key, so that a value that no
	// longer decodes keeps its endpoint across reloads too.
	known := map[string]resolver.Endpoint{}
	for attempt := 0; ; {
		rev, err := s.load(ctx, prefix, u, known)
		if err == nil {
			attempt = 0
			err = s.watch(ctx, prefix, rev, u, known)
			if errors.Is(err, errCompacted) {
				continue
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		u.ReportError(err)
		if !resolver.Sleep(ctx, s.cfg.backoff.Delay(attempt)) {
			return nil
		}
		reconnectNow(s.c)
		attempt++
	}
}

// load reads every key under prefix and replaces the set.
func (s *source) load(ctx context.Context, prefix string, u resolver.Updater, known map[string]resolver.Endpoint) (int64, error) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	resp, err := s.c.Get(rctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("etcd: get %s: %w", prefix, err)
	}
	set := make(map[string]resolver.Endpoint, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		key := string(kv.Key)
		e, err := decodeEndpoint(kv.Value)
		if err != nil {
			u.Invalid(key, err)
			if old, ok := known[key]; ok {
				set[key] = old
			}
			continue
		}
		set[key] = e
	}
	clear(known)
	for k, e := range set {
		known[k] = e
	}
	u.Replace(set)
	return resp.Header.Revision, nil
}

// watchStreams numbers the watches, each of which gets a gRPC watch stream
// of its own (see watch).
var watchStreams atomic.Uint64

// watch follows the keys from rev+1 until ctx ends or the watch fails.
//
// Every progress interval it asks etcd for a progress notification, and
// reports an error if the previous request got no answer. But etcd answers
// a progress request only if every watch on the gRPC stream is in sync and
// its revision has reached the watch's start revision: a watch from rev+1
// on a quiet etcd (and a watch the client resumed after a reconnection, from
// the revision after the last one it heard of) gets no answer until someone
// writes. So when a request went unanswered, watch reads etcd's current
// revision: if it is below next, the revision the watch delivers next,
// nothing happened since the watch's last news and the set is in sync. And
// each watch has its own gRPC stream, so that another watch of the client
// (another resolver, at a newer start revision) cannot silence its
// progress.
func (s *source) watch(ctx context.Context, prefix string, rev int64, u resolver.Updater, known map[string]resolver.Endpoint) error {
	// clientv3 shares one gRPC stream among the watches whose contexts carry
	// the same metadata; RequestProgress uses the stream of its context's.
	wctx := metadata.AppendToOutgoingContext(clientv3.WithRequireLeader(ctx),
		"grpckit-watch", strconv.FormatUint(watchStreams.Add(1), 10))
	wctx, cancel := context.WithCancel(wctx)
	defer cancel()
	wch := s.c.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	tick := time.NewTicker(s.cfg.progress)
	defer tick.Stop()
	next := rev + 1
	// heard: the watch delivered something since the last tick. due: etcd
	// had to answer the last progress request (its revision had reached
	// next), or could not be read. load just read revision rev, below next.
	heard, due := false, false
	var changes []resolver.Change
	for {
		select {
		case <-ctx.Done():
			return nil
		case wr, ok := <-wch:
			if !ok {
				return errors.New("etcd: watch closed")
			}
			if wr.CompactRevision != 0 {
				return errCompacted
			}
			if err := wr.Err(); err != nil {
				return fmt.Errorf("etcd: watch %s: %w", prefix, err)
			}
			heard = true
			next = max(next, wr.Header.Revision+1)
			changes = changes[:0]
			for _, ev := range wr.Events {
				key := string(ev.Kv.Key)
				if !strings.HasPrefix(key, prefix) {
					continue
				}
				if ev.Type == mvccpb.DELETE {
					delete(known, key)
					changes = append(changes, resolver.Change{Key: key, Delete: true})
					continue
				}
				e, err := decodeEndpoint(ev.Kv.Value)
				if err != nil {
					u.Invalid(key, err)
					continue
				}
				known[key] = e
				changes = append(changes, resolver.Change{Key: key, Endpoint: e})
			}
			u.Apply(changes...)
		case <-tick.C:
			if heard {
				due = true
			} else {
				cur, err := s.revision(wctx, prefix)
				switch {
				case err == nil && cur < next:
					u.Apply() // in sync, without news
				case err != nil:
					u.ReportError(err)
					reconnectNow(s.c)
				case due:
					u.ReportError(fmt.Errorf("etcd: no answer from etcd for %v", s.cfg.progress))
					reconnectNow(s.c)
				}
				due = err != nil || cur >= next
			}
			heard = false
			rctx, rcancel := context.WithTimeout(wctx, s.cfg.progress)
			_ = s.c.RequestProgress(rctx)
			rcancel()
		}
	}
}

// revision reads etcd's current revision.
func (s *source) revision(ctx context.Context, prefix string) (int64, error) {
	rctx, cancel := context.WithTimeout(ctx, min(s.cfg.timeout, s.cfg.progress))
	defer cancel()
	resp, err := s.c.Get(rctx, prefix, clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("etcd: get %s: %w", prefix, err)
	}
	return resp.Header.Revision, nil
}
