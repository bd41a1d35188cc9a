"""What can go wrong talking to the model server, and what to do about it: fail the job now
with a sentence the asker can act on, or back off and try again (only transient trouble)."""

from __future__ import annotations

import random
import socket
from dataclasses import dataclass
from enum import StrEnum

import httpx2
from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError, TextGenerationError

from fathom.contract import FailureCode
from fathom.settings import Settings
from worker.prompt import MIN_ANSWER_TOKENS


class JobFailed(Exception):
    """A failure that ends the job now, with a reason a user can read."""

    def __init__(self, code: FailureCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Trouble(StrEnum):
    """Kinds of transient trouble, each with its own budget of tries."""

    CONNECT = "connect"
    OVERLOADED = "overloaded"
    DROPPED = "dropped"


class Unreachable(StrEnum):
    """Why a model server could not be talked to (told apart in the asker's message)."""

    REFUSED = "refused"
    """Nothing listens: down, not started, or (TGI) still loading its weights."""
    UNRESOLVED = "unresolved"
    """Its host name does not resolve."""
    SILENT = "silent"
    """Connecting or answering timed out."""
    LOADING = "loading"
    """It answers, but 503: the model is still loading."""


class RetryLater(Exception):
    """Transient trouble: back off and try the model server again."""

    def __init__(self, kind: Trouble, note: str, cause: Unreachable | None = None) -> None:
        super().__init__(note)
        self.kind = kind
        self.note = note
        self.cause = cause


BUSY = "model server busy, retrying"
NOTES = {
    Unreachable.REFUSED: "nothing answers at the model server (connection refused), retrying",
    Unreachable.UNRESOLVED: "the model server's host name does not resolve, retrying",
    Unreachable.SILENT: "the model server does not answer, retrying",
    Unreachable.LOADING: "the model server is loading the model (503), retrying",
}


def _unreachable(cause: Unreachable) -> RetryLater:
    return RetryLater(Trouble.CONNECT, NOTES[cause], cause)


def _connect_cause(exc: BaseException) -> Unreachable:
    chain: BaseException | None = exc
    while chain is not None:
        if isinstance(chain, socket.gaierror):
            return Unreachable.UNRESOLVED
        if "name or service not known" in str(chain).lower() or "nodename" in str(chain).lower():
            return Unreachable.UNRESOLVED
        chain = chain.__cause__ or chain.__context__
    return Unreachable.REFUSED


def classify(exc: Exception, settings: Settings) -> JobFailed | RetryLater:
    """Map what the client raised to retry-or-fail. Only transient conditions are retried;
    anything unexpected is raised again."""
    if isinstance(exc, httpx2.ConnectError):
        return _unreachable(_connect_cause(exc))
    if isinstance(exc, httpx2.ConnectTimeout | httpx2.PoolTimeout):
        return _unreachable(Unreachable.SILENT)
    if isinstance(exc, InferenceTimeoutError) and isinstance(
        exc.__cause__, httpx2.ConnectTimeout | httpx2.PoolTimeout
    ):
        return _unreachable(Unreachable.SILENT)
    if isinstance(exc, httpx2.TimeoutException):
        return _unreachable(Unreachable.SILENT)
    if isinstance(exc, TimeoutError):
        # The client's per-read timeout (InferenceTimeoutError) or the stall clock.
        return JobFailed(
            FailureCode.STALLED,
            "The model server stopped sending the answer: nothing came for "
            f"{settings.read_timeout_s:g} s.",
        )
    if isinstance(exc, httpx2.TransportError):
        return RetryLater(Trouble.DROPPED, "connection to the model server lost, retrying")
    if isinstance(exc, HfHubHTTPError):
        return _classify_status(exc.response.status_code, exc.response.text[:300])
    if isinstance(exc, TextGenerationError):
        # An error inside a 200 stream. TGI sends overload this way, coded 422.
        detail = str(exc)[:300]
        if "overloaded" in detail.lower():
            return RetryLater(Trouble.OVERLOADED, BUSY)
        if "validation" in detail.lower():
            return _validation_failure(detail)
        return JobFailed(FailureCode.MODEL_ERROR, f"The model server failed: {detail}")
    raise exc


def _classify_status(status: int, detail: str) -> JobFailed | RetryLater:
    if status == 429 or "overloaded" in detail.lower():
        return RetryLater(Trouble.OVERLOADED, BUSY)
    if status == 503:
        return _unreachable(Unreachable.LOADING)
    if status in (502, 504):
        return RetryLater(
            Trouble.CONNECT,
            f"model server unavailable (HTTP {status}), retrying",
            Unreachable.SILENT,
        )
    if status in (400, 413, 422):
        return _validation_failure(detail)
    if status in (401, 403):
        return JobFailed(
            FailureCode.MODEL_ERROR,
            "The model server refused the worker's credentials (check FATHOM_MODEL_API_KEY).",
        )
    return JobFailed(FailureCode.MODEL_ERROR, f"The model server answered HTTP {status}: {detail}")


def _validation_failure(detail: str) -> JobFailed:
    if "token" in detail.lower():
        return JobFailed(
            FailureCode.QUESTION_TOO_LONG,
            f"The question is too long for the model ({detail}). Shorten it.",
        )
    return JobFailed(
        FailureCode.INVALID_REQUEST, f"The model server rejected the question: {detail}"
    )


def too_long(prompt_tokens: int, max_total_tokens: int, follow_up: bool) -> JobFailed:
    fix = "Shorten the question or start a new conversation." if follow_up else "Shorten it."
    return JobFailed(
        FailureCode.QUESTION_TOO_LONG,
        f"The question is too long for the model: it takes about {prompt_tokens} of the "
        f"{max_total_tokens} tokens the model can handle, leaving fewer than "
        f"{MIN_ANSWER_TOKENS} to work it out. {fix}",
    )


@dataclass(frozen=True, slots=True)
class Backoff:
    """How many tries one kind of trouble gets, and the delays between them."""

    attempts: int
    base_s: float
    cap_s: float

    def delay(self, failures: int, rng: random.Random) -> float:
        """Exponential backoff with jitter (half to full delay), so many workers that hit the
        same busy or loading server do not come back in lockstep."""
        delay: float = min(self.cap_s, self.base_s * 2.0 ** (failures - 1))
        return delay * rng.uniform(0.5, 1.0)


def backoff_for(kind: Trouble, settings: Settings) -> Backoff:
    if kind is Trouble.OVERLOADED:
        return Backoff(
            settings.overload_attempts, settings.overload_backoff_s, settings.overload_backoff_max_s
        )
    return Backoff(
        settings.connect_attempts, settings.connect_backoff_s, settings.connect_backoff_max_s
    )


def gave_up(
    kind: Trouble, count: int, model_url: str | None, waited_s: float, cause: Unreachable | None
) -> JobFailed:
    if kind is Trouble.OVERLOADED:
        return JobFailed(
            FailureCode.OVERLOADED,
            f"The model server stayed too busy to take the question ({count} tries). "
            "Try again later.",
        )
    if kind is Trouble.DROPPED:
        return JobFailed(
            FailureCode.MODEL_ERROR,
            f"The model server dropped the connection {count} times while answering.",
        )
    tried = f"{count} tries over {waited_s:.0f} s"
    if cause is Unreachable.LOADING:
        return JobFailed(
            FailureCode.MODEL_LOADING,
            f"The model server at {model_url} is up but still loading the model (it answered "
            f"503 to {tried}). Try again in a few minutes.",
        )
    if cause is Unreachable.UNRESOLVED:
        why = "its host name does not resolve (check FATHOM_MODEL_URL)"
    elif cause is Unreachable.SILENT:
        why = "it does not answer (timed out)"
    else:
        why = (
            "nothing accepts the connection: the server is down or not started (TGI listens "
            "only once its weights are loaded)"
        )
    return JobFailed(
        FailureCode.MODEL_UNREACHABLE,
        f"The model server at {model_url} could not be reached ({tried}): {why}.",
    )
