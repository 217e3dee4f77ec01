//go:build unix

package shed

import (
	"syscall"
	"time"
)

// rusageSource returns the process's user+system CPU time.
func rusageSource() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
