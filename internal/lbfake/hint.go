package lbfake

import (
	"context"
	"testing"

	"google.golang.org/grpc/balancer"

	"github.com/grpckit/grpckit/internal/pickhint"
)

// CheckHintedPicks picks n times from p as hedged attempts avoiding avoid
// would, and fails t when a pick goes unrecorded in its hint, goes to
// wantNot, or, when wantOnly is set, goes anywhere else.
func CheckHintedPicks(t testing.TB, p balancer.Picker, n int, avoid []string, wantNot, wantOnly string) {
	t.Helper()
	for range n {
		h := &pickhint.Hint{Avoid: avoid}
		r, err := p.Pick(balancer.PickInfo{Ctx: pickhint.NewContext(context.Background(), h)})
		if err != nil {
			t.Fatal(err)
		}
		r.Done(balancer.DoneInfo{})
		got := h.Picked()
		if got == "" || got == wantNot {
			t.Fatalf("picked %q, want a recorded pick other than %q", got, wantNot)
		}
		if wantOnly != "" && got != wantOnly {
			t.Fatalf("picked %q, want %q", got, wantOnly)
		}
	}
}
