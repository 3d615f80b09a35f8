// Command go-server serves grpctest.Grpctest's unary method from grpc-go: the
// benchmark's baseline for what one call costs in a compiled runtime, beside the
// Python server (py-server) that the project runs.
//
// It answers GetServerResponse exactly as py-server does (the same reply text, its
// replica name) and reports SERVING on the standard Health service, so Envoy's gRPC
// health checks and the benchmark's readiness check treat it like a replica.
//
//	go-server -port 50051 -replica go-1
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "grpctest/proto/go"
)

// replyTemplate is py-server's REPLY_TEMPLATE: the same bytes on the wire.
const replyTemplate = `Hello I am up and running received "%s" message from you`

var (
	port    = flag.Int("port", 50051, "TCP port to listen on (127.0.0.1)")
	replica = flag.String("replica", "go-server", "the name each reply carries")
)

type grpctestServer struct {
	pb.UnimplementedGrpctestServer
}

func (grpctestServer) GetServerResponse(_ context.Context, in *pb.Message) (*pb.MessageResponse, error) {
	return &pb.MessageResponse{
		Message:  fmt.Sprintf(replyTemplate, in.GetMessage()),
		Received: true,
		Replica:  *replica,
	}, nil
}

func main() {
	flag.Parse()
	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	server := grpc.NewServer()
	pb.RegisterGrpctestServer(server, grpctestServer{})
	healthServer := health.NewServer()
	healthServer.SetServingStatus(pb.Grpctest_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(server, healthServer)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		server.GracefulStop()
	}()
	if err := server.Serve(listener); err != nil {
		log.Fatalf("serve: %v", err)
	}
}
