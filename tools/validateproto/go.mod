module github.com/grpckit/grpckit/tools/validateproto

go 1.26.7

require (
	buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go v1.36.12-20260825204119-511051f7f437.1
	github.com/jhump/protoreflect/v2 v2.0.1
)

require google.golang.org/protobuf v1.36.12 // indirect
