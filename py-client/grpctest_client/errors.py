"""A failed call as the client reports it: for people, one line; for programs
(--output json), one object. The Go client reports failures alike.

A rule of the contract broken (INVALID_ARGUMENT with a google.rpc.BadRequest detail,
as both servers answer it) reads "field: description [rule id]", one per violation,
joined by "; "; any other failure reads as its status message.

    error: INVALID_ARGUMENT: count: must be greater than or equal to 1 and less than or equal to 100000 [uint32.gte_lte]
    {"error":{"code":"INVALID_ARGUMENT","message":"count: must be …","field_violations":[{"field":"count","reason":"uint32.gte_lte","description":"must be …"}]}}
"""  # noqa: E501

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import cast

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class FieldViolation:
    """One broken rule: the field's path ("" for a rule of the whole message),
    protovalidate's rule id, and what the rule wants."""

    field: str
    reason: str
    description: str

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{where}{self.description} [{self.reason}]"


@dataclass(frozen=True)
class Failure:
    """Why a run ended: the status code's name, its message, and the broken rules."""

    code: str
    message: str
    field_violations: list[FieldViolation] = field(default_factory=list)

    def __str__(self) -> str:
        if self.field_violations:
            return f"{self.code}: {'; '.join(str(v) for v in self.field_violations)}"
        return f"{self.code}: {self.message}"

    def as_json(self) -> dict[str, object]:
        """{"error": {...}}, the last object of --output json."""
        return {"error": asdict(self)}


def failure(err: grpc.RpcError) -> Failure:
    """The failure a call's error describes, with the BadRequest details it carries."""
    # A failed call's error is the call itself, a grpc.Call with its trailers (the
    # client's own errors, such as a deadline that ended a resume, carry none).
    call = cast("grpc.Call", err) if hasattr(err, "trailing_metadata") else None
    status = rpc_status.from_call(call) if call is not None else None
    violations: list[FieldViolation] = []
    for detail in status.details if status is not None else ():
        request = error_details_pb2.BadRequest()
        if detail.Unpack(request):
            violations += [
                FieldViolation(v.field, v.reason, v.description) for v in request.field_violations
            ]
    return Failure(err.code().name, err.details() or "", violations)
