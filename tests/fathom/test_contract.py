from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from fathom import keys
from fathom.contract import (
    Failure,
    FailureCode,
    Phase,
    ProgressEvent,
    SolveRequest,
    SolveResult,
    SolveStatus,
    Turn,
)


def test_request_round_trips_as_plain_json() -> None:
    request = SolveRequest(
        question="Find $x$ if $x^2 = 4$ and $x > 0$. 🙂 ```code```",
        history=[Turn(question="1+1?", solution="$\\boxed{2}$")],
        seed=7,
    )
    wire = json.dumps(request.model_dump(mode="json"))
    assert SolveRequest.model_validate(json.loads(wire)) == request


def test_request_rejects_empty_question_and_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        SolveRequest(question="")
    with pytest.raises(ValidationError):
        SolveRequest.model_validate({"question": "x", "surprise": 1})


def test_result_carries_failure_reason() -> None:
    result = SolveResult(
        job_id="j1",
        status=SolveStatus.FAILED,
        question="q",
        failure=Failure(code=FailureCode.QUESTION_TOO_LONG, message="Shorten it."),
    )
    back = SolveResult.model_validate_json(result.model_dump_json())
    assert back.failure is not None
    assert back.failure.code is FailureCode.QUESTION_TOO_LONG


def test_terminal_phases() -> None:
    assert [p for p in Phase if p.terminal] == [Phase.DONE, Phase.FAILED, Phase.CANCELLED]
    event = ProgressEvent(job_id="j", phase=Phase.THINKING, tokens=10)
    assert ProgressEvent.model_validate_json(event.model_dump_json()) == event


def test_keys_are_namespaced_per_job() -> None:
    names = {
        keys.progress_stream("a"),
        keys.result_key("a"),
        keys.files_key("a"),
        keys.document_key("a"),
        keys.cancel_key("a"),
    }
    assert len(names) == 5
    assert all(name.startswith("fathom:job:a:") for name in names)
