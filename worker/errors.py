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
from worker.model_server import ModelServerLoading
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


@dataclass(frozen=True, slots=True)
class ServerError:
    """What an engine's error answer says, whatever its shape."""

    message: str
    kind: str | None = None
    """TGI's `error_type` or the OpenAI-style `type` (llama.cpp, vLLM)."""
    prompt_tokens: int | None = None
    context_tokens: int | None = None
    """llama.cpp's `n_prompt_tokens` and `n_ctx` on a context overflow."""

    @classmethod
    def of(cls, payload: object) -> ServerError:
        """From a decoded error body or in-stream error object:
        TGI `{"error": str, "error_type": str}` (in a chat stream `{"message": str,
        "http_status_code": 422}`); llama.cpp and vLLM `{"error": {"message", "type", "code"}}`
        (in a stream the inner object); older vLLM `{"object": "error", "message", "type"}`;
        anything else as text."""
        if isinstance(payload, dict):
            inner = payload.get("error")
            if isinstance(inner, dict):
                return cls.of(inner)
            if isinstance(inner, str):
                kind = payload.get("error_type")
                return cls(inner, kind if isinstance(kind, str) else None)
            if isinstance(message := payload.get("message"), str):
                kind = payload.get("type")
                prompt, context = payload.get("n_prompt_tokens"), payload.get("n_ctx")
                return cls(
                    message,
                    kind if isinstance(kind, str) else None,
                    prompt if isinstance(prompt, int) else None,
                    context if isinstance(context, int) else None,
                )
        return cls(str(payload))

    @classmethod
    def from_response(cls, response: httpx2.Response) -> ServerError:
        try:
            return cls.of(response.json())
        except ValueError:
            return cls(response.text)

    @property
    def detail(self) -> str:
        return self.message[:300]


def classify(exc: Exception, settings: Settings) -> JobFailed | RetryLater:
    """Map what the client raised to retry-or-fail. Only transient conditions are retried;
    anything unexpected is raised again."""
    if isinstance(exc, ModelServerLoading):
        return _unreachable(Unreachable.LOADING)
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
        # The stall clock (or a client's per-read timeout).
        return JobFailed(
            FailureCode.STALLED,
            "The model server stopped sending the answer: nothing came for "
            f"{settings.read_timeout_s:g} s.",
        )
    if isinstance(exc, httpx2.TransportError):
        return RetryLater(Trouble.DROPPED, "connection to the model server lost, retrying")
    if isinstance(exc, HfHubHTTPError):
        return _classify_status(exc.response.status_code, ServerError.from_response(exc.response))
    if isinstance(exc, TextGenerationError):
        # An error inside a 200 stream: TGI sends overload and validation this way (coded 422);
        # llama.cpp sends an error that happens after the stream began, then ends the stream.
        error = ServerError.of(exc.args[0] if exc.args else str(exc))
        if "overloaded" in error.message.lower():
            return RetryLater(Trouble.OVERLOADED, BUSY)
        if error.kind == "exceed_context_size_error" or "validation" in error.message.lower():
            return _validation_failure(error)
        return JobFailed(FailureCode.MODEL_ERROR, f"The model server failed: {error.detail}")
    raise exc


def _classify_status(status: int, error: ServerError) -> JobFailed | RetryLater:
    if status == 429 or "overloaded" in error.message.lower():
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
        return _validation_failure(error)
    if status in (401, 403):
        return JobFailed(
            FailureCode.MODEL_ERROR,
            "The model server refused the worker's credentials (check FATHOM_MODEL_API_KEY).",
        )
    return JobFailed(
        FailureCode.MODEL_ERROR, f"The model server answered HTTP {status}: {error.detail}"
    )


def _validation_failure(error: ServerError) -> JobFailed:
    if error.prompt_tokens is not None and error.context_tokens is not None:
        # llama.cpp's exceed_context_size_error: the prompt alone fills the slot.
        return too_long(error.prompt_tokens, error.context_tokens, follow_up=False)
    if error.kind == "exceed_context_size_error" or (
        error.kind in (None, "validation") and "token" in error.message.lower()
    ):
        return JobFailed(
            FailureCode.QUESTION_TOO_LONG,
            f"The question is too long for the model ({error.detail}). Shorten it.",
        )
    return JobFailed(
        FailureCode.INVALID_REQUEST, f"The model server rejected the question: {error.detail}"
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
