package shed

import (
	"bytes"
	"errors"
	"math"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCPUInterval is how often a [CPUSampler] samples by default.
const DefaultCPUInterval = 500 * time.Millisecond

// ErrNoCPUSource is returned by [NewCPUSampler] when neither cgroups nor
// the process's resource usage can be read.
var ErrNoCPUSource = errors.New("shed: no CPU usage source")

// cgroupRoot is where cgroup v2 is mounted.
const cgroupRoot = "/sys/fs/cgroup/"

// CPUSampler measures the CPU usage of the process's cgroup (cgroup v2:
// cpu.stat's usage_usec against cpu.max's quota, or the machine's CPUs
// without a quota) or, outside a cgroup, of the process itself
// (getrusage). It smooths samples (new = 0.8·old + 0.2·sample) and holds
// one goroutine until [CPUSampler.Close].
type CPUSampler struct {
	usage     atomic.Uint64 // float64 bits
	cancel    chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// NewCPUSampler starts sampling every interval (<= 0: DefaultCPUInterval).
func NewCPUSampler(interval time.Duration) (*CPUSampler, error) {
	if interval <= 0 {
		interval = DefaultCPUInterval
	}
	read, cpus := cgroupSource()
	if read == nil {
		read, cpus = rusageSource, float64(runtime.NumCPU())
	}
	if _, err := read(); err != nil {
		return nil, errors.Join(ErrNoCPUSource, err)
	}
	s := &CPUSampler{cancel: make(chan struct{}), done: make(chan struct{})}
	go s.run(interval, read, cpus)
	return s, nil
}

func (s *CPUSampler) run(interval time.Duration, read func() (time.Duration, error), cpus float64) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	last, _ := read()
	lastAt := time.Now()
	for {
		select {
		case <-s.cancel:
			return
		case <-t.C:
		}
		cur, err := read()
		now := time.Now()
		if err != nil {
			continue
		}
		sample := float64(cur-last) / (float64(now.Sub(lastAt)) * cpus)
		last, lastAt = cur, now
		sample = math.Min(1, math.Max(0, sample))
		old := math.Float64frombits(s.usage.Load())
		s.usage.Store(math.Float64bits(0.8*old + 0.2*sample))
	}
}

// Usage returns the smoothed CPU usage in [0, 1].
func (s *CPUSampler) Usage() float64 { return math.Float64frombits(s.usage.Load()) }

// Close stops the sampler and waits for its goroutine. It is idempotent.
func (s *CPUSampler) Close() error {
	s.closeOnce.Do(func() { close(s.cancel) })
	<-s.done
	return nil
}

// cgroupSource returns a reader of the cgroup's CPU time and the CPUs it
// may use, or nil outside a cgroup v2.
func cgroupSource() (func() (time.Duration, error), float64) {
	read := func() (time.Duration, error) {
		b, err := os.ReadFile(cgroupRoot + "cpu.stat")
		if err != nil {
			return 0, err
		}
		return parseCPUStat(b)
	}
	if _, err := read(); err != nil {
		return nil, 0
	}
	cpus := float64(runtime.NumCPU())
	if b, err := os.ReadFile(cgroupRoot + "cpu.max"); err == nil {
		if q, ok, err := parseCPUMax(b); err == nil && ok {
			cpus = q
		}
	}
	return read, cpus
}

var errFormat = errors.New("shed: unexpected cgroup file format")

// parseCPUStat returns usage_usec from a cgroup v2 cpu.stat file.
func parseCPUStat(b []byte) (time.Duration, error) {
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		k, v, ok := bytes.Cut(bytes.TrimSpace(line), []byte(" "))
		if !ok || string(k) != "usage_usec" {
			continue
		}
		us, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		if err != nil || us < 0 || us > math.MaxInt64/1000 {
			return 0, errFormat
		}
		return time.Duration(us) * time.Microsecond, nil
	}
	return 0, errFormat
}

// parseCPUMax returns the CPUs a cgroup v2 cpu.max file allows ("quota
// period"); ok is false for "max" (no quota).
func parseCPUMax(b []byte) (cpus float64, ok bool, err error) {
	fields := bytes.Fields(b)
	if len(fields) != 2 {
		return 0, false, errFormat
	}
	period, err := strconv.ParseInt(string(fields[1]), 10, 64)
	if err != nil || period <= 0 {
		return 0, false, errFormat
	}
	if string(fields[0]) == "max" {
		return 0, false, nil
	}
	quota, err := strconv.ParseInt(string(fields[0]), 10, 64)
	if err != nil || quota <= 0 {
		return 0, false, errFormat
	}
	return float64(quota) / float64(period), true, nil
}
