"""Small scanners over TeX source shared by the segmenter and the engines."""

from __future__ import annotations

import re

_NEST_OPEN = re.compile(r"(?<!\\)\{|\\left(?![A-Za-z])|\\begin(?![A-Za-z])")
_NEST_CLOSE = re.compile(r"(?<!\\)\}|\\right(?![A-Za-z])|\\end(?![A-Za-z])")
_NEST = re.compile(_NEST_OPEN.pattern + "|" + _NEST_CLOSE.pattern)


def brace_end(text: str, open_brace: int) -> int:
    """Index just past the brace group starting at open_brace, or -1 when unbalanced."""
    if open_brace >= len(text) or text[open_brace] != "{":
        return -1
    depth = 0
    j = open_brace
    while j < len(text):
        ch = text[j]
        if ch == "\\":
            j += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    return -1


def nesting_depth(tex: str) -> int:
    """Deepest nesting of braces, \\left…\\right and \\begin…\\end (a \\begin{x} counts its own
    braces too, which only makes the bound stricter)."""
    depth = deepest = 0
    for m in _NEST.finditer(tex):
        if _NEST_OPEN.fullmatch(m.group(0)):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest
