package certs

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkPoll measures one poll of three unchanged files of a few KiB:
// the cost of reloading by polling.
func BenchmarkPoll(b *testing.B) {
	dir := b.TempDir()
	var files []string
	for _, name := range []string{"tls.crt", "tls.key", "ca.crt"} {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, make([]byte, 2048), 0o600); err != nil {
			b.Fatal(err)
		}
		files = append(files, f)
	}
	r := &reloader{what: "bench", files: files, load: func([][]byte) error { return nil }, logger: slog.New(slog.DiscardHandler)}
	var err error
	if r.seen, err = r.read(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		r.poll()
	}
}
