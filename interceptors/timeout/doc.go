// Package timeout gives client calls a default deadline when the caller set
// none, so that no call can wait forever on a stuck server. A deadline the
// caller set, longer or shorter, is left alone, and grpc-go sends the
// deadline to the server (grpc-timeout header), where the handler's context
// ends with it.
//
// go-grpc-middleware's timeout interceptor differs: it always applies its
// timeout, cutting a longer deadline the caller chose on purpose.
//
// Only unary calls get a default: a stream lives as long as the application
// wants (a watch may run for hours), so a default deadline would cut healthy
// streams. Set deadlines on streams explicitly.
package timeout
