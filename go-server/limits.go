package main

import (
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "grpctest/proto/go"
)

// streamLimit is the replica's own limit on streams: however many connections bring
// them, at most limit streams of the service (server streams and chats) are open at
// once (0: no limit, and no interceptor: see serverOptions). A stream whose caller does not read stays open, its next
// reply waiting for HTTP/2 flow control, so this also bounds the streams held that
// way. A stream over the limit is refused before it starts with RESOURCE_EXHAUSTED.
// Only the service's streams count: Health and reflection answer whatever the limit.
func streamLimit(limit int, replica string) grpc.StreamServerInterceptor {
	open := make(chan struct{}, limit)
	service := "/" + pb.Grpctest_ServiceDesc.ServiceName + "/"
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !strings.HasPrefix(info.FullMethod, service) {
			return handler(srv, ss)
		}
		select {
		case open <- struct{}{}:
			defer func() { <-open }()
			return handler(srv, ss)
		default:
			return status.Errorf(codes.ResourceExhausted,
				"replica %s has %d streams open, its limit (--max-streams); try again later", replica, limit)
		}
	}
}
