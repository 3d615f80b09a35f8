package main

import (
	"os"
	"testing"
	"time"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "grpctest/proto/go"
)

// The vendored proto/buf/validate/validate.proto (as `make proto` builds it into Envoy's
// descriptor set) describes exactly the rule types protovalidate-go reads: those of the
// generated-types module go.mod pins. py-server's validate_pb2 is generated from the
// same file, so both servers read the same rules.
func TestVendoredRulesAreTheLibrarysOwn(t *testing.T) {
	data, err := os.ReadFile("../envoy/grpctest.binpb")
	if err != nil {
		t.Fatal(err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(data, &set); err != nil {
		t.Fatal(err)
	}
	library := protodesc.ToFileDescriptorProto(validate.File_buf_validate_validate_proto)
	for _, file := range set.GetFile() {
		if file.GetName() == library.GetName() {
			if !proto.Equal(file, library) {
				t.Fatalf("proto/%s differs from the one of protovalidate's generated-types module", file.GetName())
			}
			return
		}
	}
	t.Fatalf("%s is not in envoy/grpctest.binpb", library.GetName())
}

// The check's own CPU per request (`go test -bench Check ./go-server`); the benchmark's
// go_direct_unchecked scenario measures it end to end.
func BenchmarkCheck(b *testing.B) {
	check, err := newRequestCheck()
	if err != nil {
		b.Fatal(err)
	}
	requests := map[string]proto.Message{
		"Message":       &pb.Message{Message: "Hello Server you there?"},
		"StreamRequest": &pb.StreamRequest{Message: "s", Count: 100, Interval: durationpb.New(10 * time.Millisecond)},
	}
	for name, request := range requests {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if err := check.check(request); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
