"""Fonts for text in formulas beyond what the math fonts and DejaVu cover: Chinese, Japanese
and Korean (`\\text{面积}`, a question's own words copied into the solution).

Noto Sans CJK is used where it is installed (Debian and Ubuntu: `apt-get install
fonts-noto-cjk`, as the Dockerfile does; bin/setup and bin/test say when it is missing), else
another common CJK font; the setting `cjk_font` (FATHOM_CJK_FONT) names a font file instead.
Without one, CJK characters are drawn as empty boxes. Vietnamese needs nothing more: DejaVu
covers it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fathom.settings import get_settings

CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)


@cache
def cjk_font_files() -> tuple[Path, ...]:
    """The CJK font files to use, best first; none when there are none."""
    named = get_settings().cjk_font
    if named is not None:
        return (named,) if named.is_file() else ()
    return tuple(Path(path) for path in CANDIDATES if Path(path).is_file())
