"""How rendered math looks, and the limits every render stays within."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Style:
    fg: str = "#DBDEE1"
    """Glyphs: a light grey, as dark chat themes write text."""
    bg: str = "#313338"
    """The opaque dark plate behind every picture, so it reads on dark and light themes."""
    accent: str = "#F0B232"
    """Frame of every \\boxed{} and of the final-answer image."""
    em_px: int = 16
    scale: int = 2
    paragraph_width_em: float = 30.0
    """Line length when a whole paragraph becomes one image."""

    # --- bounds -------------------------------------------------------------------------------
    max_tex_chars: int = 4000
    """Longest formula (or paragraph of prose + math) any engine is given."""
    max_depth: int = 24
    """Deepest brace / \\left / \\begin nesting any engine is given."""
    max_width_px: int = 4096
    max_height_px: int = 4096
    max_pixels: int = 6_000_000
    max_image_height_px: int = 1600
    """Consecutive images are stacked into one up to this height."""


STYLE = Style()
