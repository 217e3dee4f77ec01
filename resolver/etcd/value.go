package etcd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/grpckit/grpckit/resolver"
)

// ErrBadValue is returned (wrapped) for a registry value that is not a
// valid endpoint document.
var ErrBadValue = errors.New("etcd: bad endpoint value")

// maxValueLen bounds the values the resolver decodes.
const maxValueLen = 64 << 10

// decodeEndpoint decodes a value written by a registrar (or by hand):
//
//	{"address":"10.0.0.7:8080","weight":10,"zone":"eu-1a","version":"1.4.2","metadata":{"k":"v"}}
//
// Unknown fields are ignored; address is required and must be host:port.
func decodeEndpoint(v []byte) (resolver.Endpoint, error) {
	var e resolver.Endpoint
	if len(v) > maxValueLen {
		return e, fmt.Errorf("%w: %d bytes, more than %d", ErrBadValue, len(v), maxValueLen)
	}
	d := json.NewDecoder(bytes.NewReader(v))
	if err := d.Decode(&e); err != nil {
		return resolver.Endpoint{}, fmt.Errorf("%w: %v", ErrBadValue, err)
	}
	if d.More() {
		return resolver.Endpoint{}, fmt.Errorf("%w: trailing data", ErrBadValue)
	}
	if err := e.Validate(); err != nil {
		return resolver.Endpoint{}, fmt.Errorf("%w: %v", ErrBadValue, err)
	}
	return e, nil
}

// encodeEndpoint is decodeEndpoint's inverse.
func encodeEndpoint(e resolver.Endpoint) (string, error) {
	b, err := json.Marshal(e)
	return string(b), err
}
