package calltype

import (
	"testing"

	"google.golang.org/grpc"
)

func TestTypes(t *testing.T) {
	for _, tc := range []struct {
		client, server bool
		stream, method string
	}{
		{false, false, "bidi_stream", "unary"},
		{true, false, "client_stream", "client_stream"},
		{false, true, "server_stream", "server_stream"},
		{true, true, "bidi_stream", "bidi_stream"},
	} {
		if got := OfStream(tc.client, tc.server).String(); got != tc.stream {
			t.Errorf("OfStream(%v, %v): got %s, want %s", tc.client, tc.server, got, tc.stream)
		}
		m := grpc.MethodInfo{IsClientStream: tc.client, IsServerStream: tc.server}
		if got := OfMethod(m).GRPCType(); string(got) != tc.method {
			t.Errorf("OfMethod(%+v): got %s, want %s", m, got, tc.method)
		}
	}
	if got := Unary.String(); got != "unary" {
		t.Errorf("Unary: got %s, want unary", got)
	}
}
