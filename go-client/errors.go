package main

import (
	"fmt"
	"io"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
)

// failure is why a run ended, as the Python client reports it too: the status code's
// name, its message, and the rules of the contract the request broke (the
// google.rpc.BadRequest detail both servers answer INVALID_ARGUMENT with). --output json
// prints it as {"error": {...}}.
type failure struct {
	Code            string           `json:"code"`
	Message         string           `json:"message"`
	FieldViolations []fieldViolation `json:"field_violations"`
}

// fieldViolation is one broken rule: the field's path ("" for a rule of the whole
// message), protovalidate's rule id, and what the rule wants.
type fieldViolation struct {
	Field       string `json:"field"`
	Reason      string `json:"reason"`
	Description string `json:"description"`
}

func failureOf(err error) failure {
	st := status.Convert(err)
	f := failure{Code: codeName(st.Code()), Message: st.Message(), FieldViolations: []fieldViolation{}}
	for _, detail := range st.Details() {
		if request, ok := detail.(*errdetails.BadRequest); ok {
			for _, v := range request.GetFieldViolations() {
				f.FieldViolations = append(f.FieldViolations, fieldViolation{v.GetField(), v.GetReason(), v.GetDescription()})
			}
		}
	}
	return f
}

// String is the failure for people: "INVALID_ARGUMENT: count: must be … [uint32.gte_lte]",
// one "field: description [rule id]" per broken rule, joined by "; "; otherwise the
// status message.
func (f failure) String() string {
	if len(f.FieldViolations) == 0 {
		return f.Code + ": " + f.Message
	}
	described := make([]string, len(f.FieldViolations))
	for i, v := range f.FieldViolations {
		described[i] = fmt.Sprintf("%s [%s]", v.Description, v.Reason)
		if v.Field != "" {
			described[i] = v.Field + ": " + described[i]
		}
	}
	return f.Code + ": " + strings.Join(described, "; ")
}

// printJSONFailure prints {"error": {...}}, the last line of --output json after a
// failed call.
func printJSONFailure(out io.Writer, f failure) {
	_ = jsonEncoder(out).Encode(map[string]failure{"error": f})
}
