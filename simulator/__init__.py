"""A TGI 3.3.x simulator for tests, development and benchmarks (`fathom fake-tgi`); it also
speaks llama.cpp's dialect (`fathom fake-tgi --dialect llama.cpp`).

It is not a model: it recites canned R1-style solutions. It says so in `/info` (model_id
`SIMULATOR_MODEL_ID`, a version naming the simulator), in its startup log and in the reasoning
of every answer. The worker tells it from a model with `fathom.contract.is_simulator`.
"""

from __future__ import annotations

from fathom.contract import SIMULATOR_MODEL_ID, is_simulator

TGI_WIRE_VERSION = "3.3.7"
"""The TGI release whose wire format the simulator speaks."""

SIMULATOR_VERSION = f"{TGI_WIRE_VERSION}+fathom-simulator"
"""The `version` in /info: the TGI wire version plus a tag naming the simulator."""


__all__ = ["SIMULATOR_MODEL_ID", "SIMULATOR_VERSION", "TGI_WIRE_VERSION", "is_simulator"]
