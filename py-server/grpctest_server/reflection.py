"""gRPC Server Reflection, complete enough for every standard tool.

grpcio-reflection implements grpc.reflection.v1alpha only, and answers "symbol not
found" for method names (grpc/grpc#34743: the protobuf pool it asks does not index
methods). This module fills both gaps with the library's own servicer:

- v1: recent grpcurl and buf curl ask for grpc.reflection.v1 first. Its messages are
  v1alpha's under a new package name, so the same servicer answers under both names,
  and v1's file descriptor (v1alpha's, renamed) is registered so that v1 can be listed
  and described like any other service.
- symbols: the servicer is given a pool that finds a method's file through its service.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1ALPHA_SERVICE_NAME = reflection.SERVICE_NAME
V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"


def _register_v1_descriptor(pool: descriptor_pool.DescriptorPool) -> None:
    """Adds grpc/reflection/v1/reflection.proto to the pool: v1alpha's file, renamed."""
    v1_file = "grpc/reflection/v1/reflection.proto"
    try:
        pool.FindFileByName(v1_file)
        return  # registered already (a second server in this process)
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    alpha, v1 = reflection_pb2.DESCRIPTOR.package, "grpc.reflection.v1"
    proto.name, proto.package = v1_file, v1
    proto.options.java_package = "io.grpc.reflection.v1"
    proto.options.go_package = "google.golang.org/grpc/reflection/grpc_reflection_v1"
    proto.options.ClearField("deprecated")
    for message in proto.message_type:
        for field in message.field:
            if field.type_name:  # message fields only; setting "" would mark scalars too
                field.type_name = field.type_name.replace(f".{alpha}.", f".{v1}.")
    for method in proto.service[0].method:
        method.input_type = method.input_type.replace(f".{alpha}.", f".{v1}.")
        method.output_type = method.output_type.replace(f".{alpha}.", f".{v1}.")
    pool.AddSerializedFile(proto.SerializeToString())


class _MethodResolvingPool:
    """A descriptor pool that also finds the file of a method (`pkg.Service.Method`)."""

    def __init__(self, pool: descriptor_pool.DescriptorPool) -> None:
        self._pool = pool

    def FindFileContainingSymbol(self, symbol: str) -> descriptor.FileDescriptor:
        try:
            return self._pool.FindFileContainingSymbol(symbol)
        except KeyError:
            service, _, method = symbol.rpartition(".")
            try:
                found = self._pool.FindServiceByName(service)
            except KeyError:
                found = None
            if found is None or method not in found.methods_by_name:
                raise
            return found.file

    def __getattr__(self, name: str) -> object:
        return getattr(self._pool, name)


def enable(server: grpc.aio.Server, service_names: Iterable[str]) -> list[str]:
    """Serves reflection, v1 and v1alpha, for `service_names` and for itself; returns
    the reflection services' names."""
    pool = descriptor_pool.Default()
    _register_v1_descriptor(pool)
    names = (*service_names, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME)
    servicer = reflection.aio.ReflectionServicer(names, pool=_MethodResolvingPool(pool))
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1_handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    handlers = {"ServerReflectionInfo": v1_handler}
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(V1_SERVICE_NAME, handlers),)
    )
    return [V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME]
