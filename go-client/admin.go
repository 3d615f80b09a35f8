package main

import (
	"fmt"
	"log/slog"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/admin"
	"google.golang.org/grpc/reflection"
)

// serveAdmin serves gRPC's admin services on 127.0.0.1:port while the client runs:
// CSDS (envoy.service.status.v3.ClientStatusDiscoveryService: every xDS resource the
// client received, as Envoy's config dump shows Envoy's) and channelz, with reflection
// so that grpcurl needs no proto files:
//
//	grpcurl -plaintext 127.0.0.1:PORT envoy.service.status.v3.ClientStatusDiscoveryService/FetchClientStatus
//
// It returns the function that stops them.
func serveAdmin(port int) (func(), error) {
	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, err
	}
	server := grpc.NewServer()
	cleanup, err := admin.Register(server)
	if err != nil {
		_ = listener.Close() // (err is what went wrong)
		return nil, err
	}
	reflection.Register(server)
	go func() {
		if err := server.Serve(listener); err != nil {
			slog.Warn("admin services stopped", "error", err)
		}
	}()
	return func() {
		server.Stop()
		cleanup()
	}, nil
}
