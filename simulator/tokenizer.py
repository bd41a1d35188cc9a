"""A deterministic stand-in tokenizer, used alike for /tokenize, usage counts and streaming.

Pieces are at most four ASCII letters (with an optional leading space), single digits (as
Qwen tokenizes them), single symbols, runs of newlines or of other whitespace, and the R1 chat
markers as single tokens. That averages ~3.5 characters per token on solution text, close to
the real tokenizer's density, and joining the pieces gives back the text exactly.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

# Ids as in the DeepSeek-R1-Distill-Qwen vocabulary.
SPECIAL_IDS = {EOS: 151643, USER: 151644, ASSISTANT: 151645, BOS: 151646}
# `<think>` and `</think>` are added tokens but not special: servers leave them in the text.
ADDED_IDS = {THINK_OPEN: 151648, THINK_CLOSE: 151649}
ORDINARY_VOCAB = 151643
"""Ordinary pieces get ids below this (a stable hash of their text)."""

# Markers are split off first, so that no neighbouring space or symbol can swallow them.
_MARKER = re.compile("(" + "|".join(re.escape(m) for m in [*SPECIAL_IDS, *ADDED_IDS]) + ")")
_PIECE = re.compile(r"\n+| ?[A-Za-z]{1,4}| ?\d| ?[^\sA-Za-z\d]|[^\S\n]+|.", re.DOTALL)


def _pieces(text: str) -> Iterator[str]:
    for i, part in enumerate(_MARKER.split(text)):
        if i % 2:
            yield part
        else:
            yield from _PIECE.findall(part)


@dataclass(frozen=True, slots=True)
class Piece:
    """One token: its id, its text and its byte offsets in the tokenized string."""

    id: int
    text: str
    start: int
    stop: int
    special: bool


def piece_id(text: str) -> int:
    if text in SPECIAL_IDS:
        return SPECIAL_IDS[text]
    if text in ADDED_IDS:
        return ADDED_IDS[text]
    return zlib.crc32(text.encode()) % ORDINARY_VOCAB


def tokenize(text: str, *, add_bos: bool = False) -> list[Piece]:
    """Split `text` into pieces; `add_bos` prepends the BOS token (offsets 0..0) as TGI does
    for /generate and /tokenize (`add_special_tokens`)."""
    pieces = [Piece(SPECIAL_IDS[BOS], BOS, 0, 0, True)] if add_bos else []
    offset = 0
    for piece in _pieces(text):
        size = len(piece.encode())
        pieces.append(Piece(piece_id(piece), piece, offset, offset + size, piece in SPECIAL_IDS))
        offset += size
    return pieces


def count_tokens(text: str, *, add_bos: bool = False) -> int:
    return sum(1 for _ in _pieces(text)) + (1 if add_bos else 0)


def eos_piece() -> Piece:
    return Piece(SPECIAL_IDS[EOS], EOS, 0, 0, True)
