package ratelimit_test

import (
	"context"
	"fmt"

	"github.com/grpckit/grpckit/interceptors/ratelimit"
)

func ExampleNew() {
	// A burst of 2, then one call per 1,000 s.
	l, err := ratelimit.New(ratelimit.WithRate(0.001, 2))
	if err != nil {
		panic(err)
	}
	for range 3 {
		fmt.Println(l.Allow(context.Background(), "/pkg.Svc/Method"))
	}
	// Output:
	// true
	// true
	// false
}
