// The Go code generators of `make proto`, pinned for the whole repository: protoc-gen-go
// (google.golang.org/protobuf, the same release as the generated code's runtime: in the
// workspace (go.work) the two are one module version) and protoc-gen-go-grpc.
module grpctest/tools/codegen

go 1.26.0

tool (
	google.golang.org/grpc/cmd/protoc-gen-go-grpc
	google.golang.org/protobuf/cmd/protoc-gen-go
)

require (
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260928230214-8a89bd6388cc // indirect
	google.golang.org/grpc v1.85.0 // indirect
	google.golang.org/grpc/cmd/protoc-gen-go-grpc v1.6.1 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
