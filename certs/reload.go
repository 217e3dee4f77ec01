package certs

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// reloader polls files and hands their contents to load when any of them
// changed. It owns one goroutine, stopped by close.
type reloader struct {
	what     string // "server", "client": for logs and errors
	files    []string
	load     func(contents [][]byte) error
	interval time.Duration
	logger   *slog.Logger

	seen [][]byte // contents last handed to load; only the goroutine touches it after start

	mu  sync.Mutex
	err error

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// start loads the files once, failing if they do not load, then polls
// them every interval in a goroutine of its own.
func (r *reloader) start() error {
	contents, err := r.read()
	if err == nil {
		err = r.load(contents)
	}
	if err != nil {
		return fmt.Errorf("certs: %s: %w", r.what, err)
	}
	r.seen = contents
	if len(r.files) == 0 {
		return nil // nothing to reload: no goroutine
	}
	r.stop, r.done = make(chan struct{}), make(chan struct{})
	go r.run()
	return nil
}

func (r *reloader) run() {
	defer close(r.done)
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.poll()
		}
	}
}

// poll reads the files and loads them if they changed since the last
// attempt. Contents that failed to load are not tried again until they
// change, so a bad file is logged once, not every interval.
func (r *reloader) poll() {
	ctx := context.Background()
	contents, err := r.read()
	if err == nil && equal(contents, r.seen) {
		return
	}
	if err == nil {
		r.seen = contents
		err = r.load(contents)
	}
	if err != nil {
		err = fmt.Errorf("certs: %s: reload: %w (keeping the last good certificates)", r.what, err)
		r.mu.Lock()
		same := r.err != nil && r.err.Error() == err.Error()
		r.err = err
		r.mu.Unlock()
		if !same {
			r.logger.LogAttrs(ctx, slog.LevelWarn, "certs: reload failed", slog.String("certs.side", r.what), slog.Any("error", err))
		}
		return
	}
	r.mu.Lock()
	r.err = nil
	r.mu.Unlock()
	r.logger.LogAttrs(ctx, slog.LevelInfo, "certs: reloaded", slog.String("certs.side", r.what), slog.Any("certs.files", r.files))
}

func (r *reloader) read() ([][]byte, error) {
	contents := make([][]byte, len(r.files))
	for i, f := range r.files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		contents[i] = b
	}
	return contents, nil
}

func equal(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// lastErr is the error of the last reload, nil if it succeeded.
func (r *reloader) lastErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// close stops polling and waits for the goroutine; it may be called more
// than once.
func (r *reloader) close() error {
	r.closeOnce.Do(func() {
		if r.stop == nil {
			return
		}
		close(r.stop)
		<-r.done
	})
	return nil
}
