"""The command line's tests run the worker and its settings as the worker's tests do."""

from tests.worker.conftest import configure

__all__ = ["configure"]
