package main

import (
	"fmt"
	"strings"
	"time"
)

// scaleReport is results/scale.md: the table and how it was made.
func scaleReport(rows []ScaleRow, took time.Duration, command string) string {
	var sb strings.Builder
	sb.WriteString("# Cost of resolver updates per balancer\n\n")
	fmt.Fprintf(&sb, "Each balancer is built with `balancer.Get(name).Build` on a fake `balancer.ClientConn` that dials nothing "+
		"(a SubConn the balancer connects turns CONNECTING then READY when the fake delivers its queued state changes; "+
		"a SubConn shut down reports SHUTDOWN, as grpc's do), and fed resolver states of N made-up endpoints "+
		"(`Endpoints` with grpckit's weight attribute, and the same `Addresses`, which balancers built on grpc's `base` read). "+
		"An update's time and allocations include the SubConn state changes it causes. "+
		"*first*: the first update after Build; *one changed*: one endpoint replaced by a new address; *1%% changed*: "+
		"1%% of the endpoints replaced; both are medians of %d updates back and forth (A→B, B→A, ...). "+
		"Allocations are `runtime.MemStats` Mallocs and TotalAlloc deltas around the update (after a GC). "+
		"Times are single wall-clock measurements on a shared machine: read them to the order of magnitude. "+
		"A balancer whose first update at a size is predicted (from its growth between the sizes before) to exceed %v is skipped there.\n\n",
		scaleChanges, scaleBudget)
	sb.WriteString(scaleMarkdown(rows))
	sb.WriteString("\nNotes:\n\n")
	sb.WriteString("- grpckit p2c and wrr connect a subset of 100 endpoints (rendezvous hashing); the others connect every endpoint.\n")
	sb.WriteString("- go-zero's `p2c_ewma` and grpc-go's `round_robin` rebuild their picker over all READY SubConns each time one changes state, " +
		"so a first update of N endpoints costs about N²; go-zero's own resolvers (direct, etcd, k8s) hand the balancer a random subset of at most 32 endpoints, " +
		"so a go-zero client does not meet this unless it brings its own resolver.\n")
	sb.WriteString("- grpc-go `pick_first` connects one address at a time and stops at the first READY one.\n\n")
	fmt.Fprintf(&sb, "Command: `%s` (%.0f s in all).\n\n", command, took.Seconds())
	fmt.Fprintf(&sb, "Machine: %s. Date: %s.\n", benchMachineInfo(), time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	return sb.String()
}
