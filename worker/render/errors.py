"""Why a formula could not be drawn by one engine (the chain then tries the next step)."""

from __future__ import annotations


class RenderError(Exception):
    """This engine cannot draw this input (unsupported, too large, too slow)."""


class EngineUnavailable(RenderError):
    """The engine cannot run at all here (node missing, process died)."""
