package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"buf.build/go/protovalidate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "grpctest/proto/go"
)

// requestCheck answers INVALID_ARGUMENT for every request of grpctest.Grpctest that
// does not parse (with the runtime's reason) or that breaks a rule of the contract: the
// buf.validate options of proto/grpctest/grpctest.proto, enforced by protovalidate.
// The status then carries a google.rpc.BadRequest with one field violation per broken
// rule: field path, protovalidate's rule id as reason, its description. Unary requests
// are checked before the handler; a request stream's messages each as it arrives.
//
// Our own few lines rather than go-grpc-middleware's protovalidate interceptor: that
// one answers with a buf.validate.Violations detail, which only protovalidate users can
// read, where every gRPC runtime (and Envoy's JSON transcoder) knows BadRequest; and it
// knows nothing of requests that did not parse (requestCodec). py-server answers with
// the same details (its validation.py).
type requestCheck struct {
	validator protovalidate.Validator
}

func newRequestCheck() (requestCheck, error) {
	validator, err := protovalidate.New()
	return requestCheck{validator}, err
}

func (c requestCheck) serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(c.unary), grpc.ChainStreamInterceptor(c.stream)}
}

func isGrpctest(method string) bool {
	return strings.HasPrefix(method, "/"+pb.Grpctest_ServiceDesc.ServiceName+"/")
}

func (c requestCheck) unary(ctx context.Context, request any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if isGrpctest(info.FullMethod) {
		if err := c.check(request); err != nil {
			return nil, err
		}
	}
	return handler(ctx, request)
}

func (c requestCheck) stream(srv any, stream grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if isGrpctest(info.FullMethod) {
		stream = checkedStream{stream, c}
	}
	return handler(srv, stream)
}

// checkedStream checks each message as it is received.
type checkedStream struct {
	grpc.ServerStream
	requestCheck
}

func (s checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return s.check(m)
}

func (c requestCheck) check(request any) error {
	msg := request.(proto.Message)
	if err := unparsed(msg); err != nil {
		return status.Errorf(codes.InvalidArgument, "request is not a valid %s: %v", msg.ProtoReflect().Descriptor().FullName(), err)
	}
	err := c.validator.Validate(msg)
	if invalid, ok := errors.AsType[*protovalidate.ValidationError](err); ok {
		return badRequest(invalid.Violations)
	}
	if err != nil { // a rule that cannot be compiled or evaluated: ours to fix
		return status.Error(codes.Internal, err.Error())
	}
	return nil
}

// badRequest is INVALID_ARGUMENT with a google.rpc.BadRequest detail, one field
// violation per broken rule in protovalidate's order; its message lists them as
// "field: description" ("description" for a rule of the whole message), joined by "; ".
func badRequest(violations []*protovalidate.Violation) error {
	details := &errdetails.BadRequest{}
	described := make([]string, 0, len(violations))
	for _, violation := range violations {
		v := &errdetails.BadRequest_FieldViolation{
			Field:       protovalidate.FieldPathString(violation.Proto.GetField()),
			Reason:      violation.Proto.GetRuleId(),
			Description: violation.Proto.GetMessage(),
		}
		details.FieldViolations = append(details.FieldViolations, v)
		if v.Field == "" {
			described = append(described, v.Description)
		} else {
			described = append(described, fmt.Sprintf("%s: %s", v.Field, v.Description))
		}
	}
	st, err := status.New(codes.InvalidArgument, strings.Join(described, "; ")).WithDetails(details)
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	return st.Err()
}
