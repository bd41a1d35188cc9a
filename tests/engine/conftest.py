"""A real inference engine for tests: llama.cpp's own `llama-server` (built from source by
devtools.llamacpp, cached outside the repository) serving a tiny random-weight GGUF shaped
like Fathom-R1-14B (devtools.tiny_gguf).

Nothing here is skipped when the engine is missing: the first run builds it (several minutes
on two cores, see docs/notes/llamacpp-wire.md), and a machine without cmake or a C++ compiler
fails with what to install. `python -m devtools.llamacpp build` builds it ahead of time."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.llamacpp import cached_llama_server, ensure_llama_server, llama_server
from devtools.tiny_gguf import tiny_gguf_path
from tests.worker.conftest import configure

__all__ = ["configure"]

HERE = Path(__file__).parent

# pytest's per-test timeout counts fixture set-up, and the first test to ask for the engine
# may be the one that compiles it. Only when the cache has no build yet do engine tests get
# this much; otherwise the project's default (tight) timeout applies.
BUILD_TIMEOUT_S = 3600

CTX_SIZE = 2048


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if cached_llama_server() is not None:
        return
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.timeout(BUILD_TIMEOUT_S))


@pytest.fixture(scope="session")
def llama_server_binary() -> Path:
    """llama.cpp's llama-server, built on first use."""
    return ensure_llama_server()


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """The tiny Fathom-shaped GGUF (written on first use, a few hundred KB)."""
    return tiny_gguf_path()


@pytest.fixture(scope="module")
def llama_url(llama_server_binary: Path, tiny_model: Path) -> Iterator[str]:
    """A started llama-server with the tiny model: one slot of CTX_SIZE tokens, `<think>`
    kept in the content (--reasoning-format none). Shared by a module's tests."""
    with llama_server(tiny_model, ctx_size=CTX_SIZE, parallel=1, binary=llama_server_binary) as url:
        yield url


ALIAS = "tiny-random-fathom-shaped"
"""The model name the test servers report (`--alias`): a real engine, a model of noise."""

# Server-wide default grammars (`--grammar`, GBNF): requests that set none, as the worker's do,
# get them, so the noise model writes an R1-shaped answer and ends it with EOS. The free digits
# keep the sampler in the loop.
SOLVING_GRAMMAR = (
    r'root ::= "Adding " [0-9] " and " [0-9] " gives the sum.</think>" '
    r'"\n\nThe sum is $2+2=4$, so the answer is $\\boxed{4}$."'
)
UNFINISHED_GRAMMAR = r'root ::= "Still thinking about " [0-9] " and more, no end in sight."'


@contextlib.contextmanager
def engine(
    binary: Path,
    model: Path,
    *args: str,
    ctx_size: int = CTX_SIZE,
    parallel: int = 1,
    reasoning_format: str | None = "none",
) -> Iterator[str]:
    """A llama-server with the tiny model under ALIAS, and any extra flags; reasoning_format
    None keeps the server's default ("auto")."""
    with llama_server(
        model,
        ctx_size=ctx_size,
        parallel=parallel,
        binary=binary,
        reasoning_format=reasoning_format,
        extra_args=["--alias", ALIAS, *args],
    ) as url:
        yield url
