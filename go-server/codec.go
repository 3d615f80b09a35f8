package main

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	protov2 "google.golang.org/protobuf/proto"
)

// requestCodec is grpc-go's protobuf codec, except that a grpctest request that does
// not parse is no codec error. grpc-go turns a codec error into INTERNAL (rpc_util.go,
// recv) and writes that status the moment the message is received (stream.go, RecvMsg),
// before any interceptor or handler could answer INVALID_ARGUMENT instead (for a unary
// call, before the interceptors even run: server.go decodes its request first). So the message is
// handed on empty, with the bytes that did not parse kept as its unknown fields (where
// protobuf keeps any bytes it does not understand), and the check of every request
// (validation.go) parses them again to answer with the runtime's reason. Nothing is
// kept anywhere but in the message. Other services (health, reflection) keep the
// standard behaviour.
type requestCodec struct {
	encoding.CodecV2
}

func newRequestCodec() encoding.CodecV2 {
	return requestCodec{encoding.GetCodecV2(proto.Name)}
}

func (c requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	msg, ok := v.(protov2.Message)
	if err == nil || !ok || msg.ProtoReflect().Descriptor().FullName().Parent() != "grpctest" {
		return err
	}
	protov2.Reset(msg)
	msg.ProtoReflect().SetUnknown(data.Materialize())
	return nil
}

// unparsed is why a request did not parse (requestCodec kept its bytes), in the
// protobuf runtime's words; nil if it did. Unknown fields of a request that did parse
// (a newer client's) parse again.
func unparsed(msg protov2.Message) error {
	unknown := msg.ProtoReflect().GetUnknown()
	if len(unknown) == 0 {
		return nil
	}
	return protov2.Unmarshal(unknown, msg.ProtoReflect().New().Interface())
}
