package main

import (
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	protov2 "google.golang.org/protobuf/proto"
)

// lenientCodec is grpc-go's protobuf codec, except that a grpctest request that does
// not parse is handed to its method instead of failing the call. grpc-go turns a
// codec error into an opaque INTERNAL; this way malformed protobuf and invalid UTF-8
// get INVALID_ARGUMENT with a reason, as py-server answers them (its lenient
// deserializer). Other services (health, reflection) keep the standard behaviour.
type lenientCodec struct {
	encoding.CodecV2
}

// badRequests: the requests that did not parse, and why, until their method asks
// (decodeError). Each grpctest method asks once for every request it receives.
var badRequests sync.Map

func newLenientCodec() encoding.CodecV2 {
	return lenientCodec{encoding.GetCodecV2(proto.Name)}
}

func (c lenientCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	msg, ok := v.(protov2.Message)
	if err == nil || !ok {
		return err
	}
	name := msg.ProtoReflect().Descriptor().FullName()
	if name.Parent() != "grpctest" {
		return err
	}
	protov2.Reset(msg)
	badRequests.Store(v, fmt.Errorf("request is not a valid %s: Error parsing message with type '%s': %s",
		name, name, parseReason(err)))
	return nil
}

// parseReason words a parse error as the protobuf runtime under py-server (upb)
// does: the two reasons it gives.
func parseReason(err error) string {
	var utf8 interface{ InvalidUTF8() bool }
	if errors.As(err, &utf8) && utf8.InvalidUTF8() {
		return "String field had bad UTF-8"
	}
	return "Wire format was corrupt"
}

// decodeError is why request did not parse; nil if it did.
func decodeError(request any) error {
	if err, ok := badRequests.LoadAndDelete(request); ok {
		return err.(error)
	}
	return nil
}
