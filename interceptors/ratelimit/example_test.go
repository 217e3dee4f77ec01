package ratelimit_test

import (
	"context"
	"fmt"
	"time"

	"github.com/grpckit/grpckit/interceptors/ratelimit"
)

func ExampleNew() {
	now := time.Unix(0, 0) // a stopped clock: no token comes back
	l, err := ratelimit.New(ratelimit.WithRate(10, 2), ratelimit.WithClock(func() time.Time { return now }))
	if err != nil {
		panic(err)
	}
	for range 3 {
		fmt.Println(l.Allow(context.Background(), "/pkg.Svc/Method"))
	}
	now = now.Add(100 * time.Millisecond) // one token at 10/s
	fmt.Println(l.Allow(context.Background(), "/pkg.Svc/Method"))
	// Output:
	// true
	// true
	// false
	// true
}
