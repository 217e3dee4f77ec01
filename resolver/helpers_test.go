package resolver

import (
	"net/url"

	grpcresolver "google.golang.org/grpc/resolver"
)

func parseURL(s string) (grpcresolver.Target, error) {
	u, err := url.Parse(s)
	if err != nil {
		return grpcresolver.Target{}, err
	}
	return grpcresolver.Target{URL: *u}, nil
}
