"""A TGI 3.3.x simulator for tests, development and benchmarks (`fathom fake-tgi`).

It is not a model: it recites canned R1-style solutions. It says so in `/info` (model_id
`SIMULATOR_MODEL_ID`, a version naming the simulator), in its startup log and in the reasoning
of every answer. This module stays import-light so the worker can call `is_simulator` cheaply.
"""

from __future__ import annotations

SIMULATOR_MODEL_ID = "fathom-simulator"
"""The model_id the simulator reports in /info, /v1/models and every completion's `model`."""

TGI_WIRE_VERSION = "3.3.7"
"""The TGI release whose wire format the simulator speaks."""

SIMULATOR_VERSION = f"{TGI_WIRE_VERSION}+fathom-simulator"
"""The `version` in /info: the TGI wire version plus a tag naming the simulator."""


def is_simulator(model_id: str) -> bool:
    """Whether a server's reported model_id (from /info or a completion) is this simulator."""
    return model_id.strip().lower().startswith(SIMULATOR_MODEL_ID)
