// Package addsvcv1 holds the Go code buf generates from
// grpckit/addsvc/v1/addsvc.proto: the messages and the client and server
// of grpckit.addsvc.v1.AddService, go-kit's classic example service (Sum
// adds two integers, Concat joins two strings), which grpckit's quick start
// and demo serve.
//
// Implement [AddServiceServer] (embed [UnimplementedAddServiceServer]),
// register it with [RegisterAddServiceServer], and call it through
// [NewAddServiceClient]. The generated files (*.pb.go) are never edited by
// hand: change addsvc.proto and run buf generate.
package addsvcv1
