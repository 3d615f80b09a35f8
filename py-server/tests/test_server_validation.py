"""The check's own pieces: a violation's field path written as protovalidate-go writes it
(go-server answers with the same paths), and the status a broken rule gets. The check
itself, against the real servers, is the conformance suite's (tests/conformance)."""

from __future__ import annotations

import protovalidate
import pytest
from google.rpc import code_pb2, error_details_pb2
from protobuf import Oneof

from grpctest import grpctest_pb2
from grpctest_server import validation


def path(*elements: tuple[str, Oneof | None]) -> protovalidate.FieldPathPb:
    return protovalidate.FieldPathPb(
        elements=[protovalidate.FieldPathElementPb(field_name=n, subscript=s) for n, s in elements]
    )


@pytest.mark.parametrize(
    ("elements", "written"),
    [
        ([("count", None)], "count"),
        ([("items", Oneof("index", 2)), ("name", None)], "items[2].name"),
        ([("labels", Oneof("string_key", 'a"é'))], 'labels["a\\"é"]'),
        ([("flags", Oneof("bool_key", True))], "flags[true]"),
        ([("by_id", Oneof("int_key", -3))], "by_id[-3]"),
    ],
)
def test_field_paths_are_written_as_protovalidate_go_writes_them(elements, written) -> None:
    assert validation.field_path(path(*elements)) == written


def test_a_rule_of_the_whole_message_has_no_field() -> None:
    assert validation.field_path(None) == ""


def test_a_broken_rule_is_invalid_argument_with_bad_request_details() -> None:
    request = grpctest_pb2.StreamRequest(message="", count=3, resume_after=3)
    status = validation.bad_request(protovalidate.Validator().collect_violations(request))
    assert status.code == code_pb2.INVALID_ARGUMENT
    [detail] = status.details
    details = error_details_pb2.BadRequest()
    assert detail.Unpack(details)
    found = [(v.field, v.reason) for v in details.field_violations]
    assert found == [("", "resume_after_below_count"), ("message", "required")]
    assert status.message == "; ".join(
        f"{v.field}: {v.description}" if v.field else v.description
        for v in details.field_violations
    )
