"""A tiny random-weight GGUF shaped like Fathom-R1-14B, for running a real llama.cpp in tests.

Fathom-R1-14B is a DeepSeek-R1-Distill-Qwen fine-tune: Qwen2 architecture, GPT-2-style
byte-level BPE with the "deepseek-r1-qwen" pre-tokenizer, the DeepSeek special tokens, and a
chat template whose generation prompt ends in `<｜Assistant｜><think>\\n`. This module writes a
model with all of that but a few hundred kilobytes of seeded random weights, so a llama.cpp
server loads it in milliseconds and streams noise through the real code paths (template,
tokenizer, sampler, slots, HTTP).

What is faithful to the real GGUF (as llama.cpp's convert_hf_to_gguf would write it):
- token types: `<｜begin▁of▁sentence｜>`, `<｜end▁of▁sentence｜>`, `<｜User｜>` and
  `<｜Assistant｜>` are CONTROL (not rendered into text by default; the converter marks every
  `<｜...｜>` token so), `<think>` and `</think>` are USER_DEFINED: ordinary text that the
  tokenizer keeps whole (the HF tokenizer has them "special": false);
- bos = `<｜begin▁of▁sentence｜>`, eos = `<｜end▁of▁sentence｜>`, add_bos_token true;
- the template keeps only the part after `</think>` of assistant history (`content.split`),
  which is also what makes llama.cpp recognise it as a reasoning template.

What is not: the vocabulary is the 256 byte tokens plus a handful of merges (so text costs
about one token per byte), and an output bias keeps the CONTROL tokens (EOS included) and the
non-ASCII bytes far down. So generation runs to max_tokens ("length") unless a request's
`logit_bias` or `stop` says otherwise, and every token is printable text (random bytes would
be invalid UTF-8, which the server holds back or replaces): streamed lengths and chunk counts
are deterministic instead of depending on where the noise happens to pick EOS.

    tiny_gguf_path() -> Path    builds once per parameter set (cached by hash), then reuses
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from devtools.llamacpp import cache_root

# Bump when the file this module writes changes for the same parameters.
BUILDER_VERSION = 1

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

# The DeepSeek-R1-Distill-Qwen chat template reduced to what Fathom uses (no tool calls):
# an optional system prompt goes right after BOS, user turns after <｜User｜>, assistant turns
# after <｜Assistant｜> with everything up to the last </think> dropped and EOS appended, and the
# generation prompt opens the reasoning with "<think>\n".
CHAT_TEMPLATE = (
    "{%- if not add_generation_prompt is defined %}{%- set add_generation_prompt = false %}"
    "{%- endif %}"
    "{%- set ns = namespace(system_prompt='') %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' %}{%- set ns.system_prompt = message['content'] %}"
    "{%- endif %}"
    "{%- endfor %}"
    "{{- bos_token }}{{- ns.system_prompt }}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}{{- '" + USER + "' + message['content'] }}"
    "{%- elif message['role'] == 'assistant' %}"
    "{%- set content = message['content'] %}"
    "{%- if '</think>' in content %}{%- set content = content.split('</think>')[-1] %}"
    "{%- endif %}"
    "{{- '" + ASSISTANT + "' + content + '" + EOS + "' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '" + ASSISTANT + "<think>\\n' }}{%- endif %}"
)

# A few merges so that the BPE path is exercised (pairs must exist before the pair that uses
# them). "Ġ" is the byte-level stand-in for a space.
MERGES: tuple[tuple[str, str], ...] = (
    ("Ġ", "t"),
    ("h", "e"),
    ("Ġt", "he"),
    ("i", "n"),
    ("Ġ", "a"),
    ("e", "r"),
    ("o", "n"),
    ("Ġ", "s"),
    ("r", "e"),
    ("a", "t"),
    ("Ġ", "="),
    ("Ġ", "+"),
    ("Ġ", "x"),
    ("b", "o"),
    ("x", "e"),
    ("bo", "xe"),
    ("boxe", "d"),
    ("\\", "boxed"),
    ("f", "r"),
    ("fr", "a"),
    ("fra", "c"),
    ("\\", "frac"),
)


@dataclasses.dataclass(frozen=True)
class TinySpec:
    """The builder's parameters; every field is part of the cache key."""

    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 4
    n_head_kv: int = 2
    n_ff: int = 128
    context_length: int = 16384
    rope_freq_base: float = 1_000_000.0
    rms_eps: float = 1e-6
    seed: int = 0
    # Added to the logits of the tokens the model should not produce by itself: EOS, BOS,
    # <｜User｜>, <｜Assistant｜> and the bytes that are not printable ASCII (their random
    # sequences are invalid UTF-8). Strongly negative: the model never ends on its own and
    # every generated token is whole text, one streamed chunk per token.
    suppress_logit_bias: float = -30.0


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable character table used by byte-level BPE: printable
    Latin-1 bytes stand for themselves, the others are shifted to code points from 256 up."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table: dict[int, str] = {}
    shifted = 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + shifted)
            shifted += 1
    return table


@dataclasses.dataclass(frozen=True)
class Vocab:
    tokens: list[str]
    types: list[int]
    merges: list[str]
    bos_id: int
    eos_id: int


def build_vocab() -> Vocab:
    from gguf import TokenType

    byte_chars = bytes_to_unicode()
    tokens = [byte_chars[b] for b in range(256)]
    types = [int(TokenType.NORMAL)] * 256
    known = set(tokens)
    merges: list[str] = []
    for left, right in MERGES:
        if left not in known or right not in known:
            raise ValueError(f"merge {left!r} + {right!r} uses a token not in the vocabulary")
        merged = left + right
        merges.append(f"{left} {right}")
        if merged not in known:
            tokens.append(merged)
            types.append(int(TokenType.NORMAL))
            known.add(merged)
    # Same order as the real tokenizer's added tokens (151643...): EOS, User, Assistant, BOS,
    # then the think markers.
    specials = [
        (EOS, TokenType.CONTROL),
        (USER, TokenType.CONTROL),
        (ASSISTANT, TokenType.CONTROL),
        (BOS, TokenType.CONTROL),
        (THINK_OPEN, TokenType.USER_DEFINED),
        (THINK_CLOSE, TokenType.USER_DEFINED),
    ]
    for text, kind in specials:
        tokens.append(text)
        types.append(int(kind))
    return Vocab(
        tokens=tokens,
        types=types,
        merges=merges,
        bos_id=tokens.index(BOS),
        eos_id=tokens.index(EOS),
    )


def suppressed_ids(vocab: Vocab) -> list[int]:
    """Token ids the output bias pushes down: the CONTROL tokens and the byte tokens other
    than printable ASCII, tab and newline."""
    from gguf import TokenType

    allowed_bytes = {ord("\t"), ord("\n"), *range(0x20, 0x7F)}
    return [
        token_id
        for token_id, kind in enumerate(vocab.types)
        if kind == TokenType.CONTROL or (token_id < 256 and token_id not in allowed_bytes)
    ]


def _cache_key(spec: TinySpec) -> str:
    recipe = {
        "builder": BUILDER_VERSION,
        "spec": dataclasses.asdict(spec),
        "template": CHAT_TEMPLATE,
        "merges": MERGES,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def write_tiny_gguf(path: Path, spec: TinySpec = TinySpec()) -> None:
    """Write the tiny model described by `spec` to `path`."""
    import gguf

    if spec.n_embd % spec.n_head or spec.n_head % spec.n_head_kv:
        raise ValueError("n_embd must divide into n_head heads, n_head into n_head_kv groups")
    vocab = build_vocab()
    n_vocab = len(vocab.tokens)
    head_dim = spec.n_embd // spec.n_head
    n_embd_kv = head_dim * spec.n_head_kv
    rng = np.random.default_rng(spec.seed)

    def weight(rows: int, cols: int, std: float) -> np.ndarray:
        # numpy (rows, cols) is ggml's {cols, rows}: `cols` is the input dimension
        return rng.normal(0.0, std, size=(rows, cols)).astype(np.float32)

    def vector(n: int, value: float | None = None, std: float = 0.02) -> np.ndarray:
        if value is not None:
            return np.full(n, value, dtype=np.float32)
        return rng.normal(0.0, std, size=n).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), arch="qwen2")
    writer.add_name("fathom-tiny-test (random weights)")
    writer.add_file_type(int(gguf.LlamaFileType.ALL_F32))
    writer.add_context_length(spec.context_length)
    writer.add_embedding_length(spec.n_embd)
    writer.add_block_count(spec.n_layer)
    writer.add_feed_forward_length(spec.n_ff)
    writer.add_head_count(spec.n_head)
    writer.add_head_count_kv(spec.n_head_kv)
    writer.add_rope_freq_base(spec.rope_freq_base)
    writer.add_layer_norm_rms_eps(spec.rms_eps)

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("deepseek-r1-qwen")
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    writer.add_token_merges(vocab.merges)
    writer.add_bos_token_id(vocab.bos_id)
    writer.add_eos_token_id(vocab.eos_id)
    writer.add_pad_token_id(vocab.eos_id)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    writer.add_tensor("token_embd.weight", weight(n_vocab, spec.n_embd, 1.0))
    for i in range(spec.n_layer):
        std = 1.0 / np.sqrt(spec.n_embd)
        writer.add_tensor(f"blk.{i}.attn_norm.weight", vector(spec.n_embd, 1.0))
        writer.add_tensor(f"blk.{i}.attn_q.weight", weight(spec.n_embd, spec.n_embd, std))
        writer.add_tensor(f"blk.{i}.attn_q.bias", vector(spec.n_embd))
        writer.add_tensor(f"blk.{i}.attn_k.weight", weight(n_embd_kv, spec.n_embd, std))
        writer.add_tensor(f"blk.{i}.attn_k.bias", vector(n_embd_kv))
        writer.add_tensor(f"blk.{i}.attn_v.weight", weight(n_embd_kv, spec.n_embd, std))
        writer.add_tensor(f"blk.{i}.attn_v.bias", vector(n_embd_kv))
        writer.add_tensor(f"blk.{i}.attn_output.weight", weight(spec.n_embd, spec.n_embd, std))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", vector(spec.n_embd, 1.0))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weight(spec.n_ff, spec.n_embd, std))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(spec.n_ff, spec.n_embd, std))
        writer.add_tensor(
            f"blk.{i}.ffn_down.weight", weight(spec.n_embd, spec.n_ff, 1.0 / np.sqrt(spec.n_ff))
        )
    writer.add_tensor("output_norm.weight", vector(spec.n_embd, 1.0))
    writer.add_tensor("output.weight", weight(n_vocab, spec.n_embd, 0.5))
    output_bias = np.zeros(n_vocab, dtype=np.float32)
    output_bias[suppressed_ids(vocab)] = spec.suppress_logit_bias
    writer.add_tensor("output.bias", output_bias)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def tiny_gguf_path(spec: TinySpec = TinySpec()) -> Path:
    """The cached GGUF for `spec`, written first if missing (under the Fathom cache dir,
    gguf/tiny-qwen2-<hash of the parameters>.gguf). Concurrent callers are safe: each writes
    a private temporary file and renames it into place."""
    directory = cache_root() / "gguf"
    path = directory / f"tiny-qwen2-{_cache_key(spec)}.gguf"
    if path.is_file():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=".tiny-", suffix=".gguf")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write_tiny_gguf(tmp, spec)
        tmp.chmod(0o644)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


if __name__ == "__main__":
    print(tiny_gguf_path())
