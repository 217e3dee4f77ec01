//go:build !unix

package shed

import "time"

// rusageSource is not available here: only cgroups are read.
func rusageSource() (time.Duration, error) { return 0, ErrNoCPUSource }
