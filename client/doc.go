// Package client builds gRPC client connections that generated NewXxxClient
// functions take.
//
// [New] assembles a grpc.ClientConn with the interceptor chain in the order
// stated in order.go (see [Slot]), explicit transport security (there is no
// silent insecure default), a default deadline for unary calls, a
// load-balancing policy, and keepalive defaults that any gRPC server's
// default ping policy accepts (see docs/defaults.md):
//
//	conn, err := client.New("dns:///addsvc.internal:8080", grpckit.WithTLS(&tls.Config{}))
//	if err != nil { ... }
//	defer conn.Close()
//	add := addsvcv1.NewAddServiceClient(conn)
//
// Like grpc.NewClient, New does not connect: the first call, or
// [Conn.WaitForReady], does.
package client
