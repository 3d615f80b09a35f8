"""grpctest's code generation tools (`make proto`), no part of any program.

protoc_gen_grpc_python  gRPC's Python generator as a protoc plugin, for buf generate
"""
