"""`fathom render`: look at what the renderer makes of a formula, or of a whole solution and
how the bot would post it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    if args.markdown:
        if not args.out:
            print("fathom render: --markdown needs --out DIR", file=sys.stderr)
            return 2
        return _layout(Path(args.markdown), Path(args.out), args.answer, args.reasoning)
    if args.latex is None or not args.output:
        usage = "give 'LATEX' -o out.png, or --markdown FILE --out DIR"
        print(f"fathom render: {usage}", file=sys.stderr)
        return 2
    return _formula(args.latex, Path(args.output), display=not args.inline)


def _formula(tex: str, output: Path, display: bool) -> int:
    from worker.render.chain import Picture, default_renderer

    shown = default_renderer().formula(tex, display=display)
    if isinstance(shown, Picture):
        output.write_bytes(shown.png)
        print(f"{output}: {shown.width}x{shown.height} px, {len(shown.png)} bytes ({shown.engine})")
        return 0
    print(f"fathom render: no engine could draw this formula; as text ({shown.how}):")
    print(shown.text)
    return 1


def _layout(markdown: Path, out: Path, answer: str | None, reasoning_file: str | None) -> int:
    from bot.logic.compose import REASONING_FILE, document_pieces
    from bot.logic.pack import Attachment, pack
    from worker.parse import last_boxed
    from worker.render.document import draw_solution

    try:
        solution = markdown.read_text(encoding="utf-8")
        reasoning = Path(reasoning_file).read_text(encoding="utf-8") if reasoning_file else None
    except (OSError, UnicodeDecodeError) as exc:
        print(f"fathom render: cannot read input: {exc}", file=sys.stderr)
        return 2
    if answer is None:
        answer = last_boxed(solution)
    drawn = draw_solution(solution, answer)
    pieces = document_pieces(drawn.document)
    files = dict(drawn.files)
    if reasoning is not None:
        files[REASONING_FILE] = reasoning.encode()
        pieces.append(Attachment(REASONING_FILE))
    messages = [
        {"content": message.content, "files": list(message.files)} for message in pack(pieces)
    ]
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    (out / "document.json").write_text(drawn.document.model_dump_json(indent=2) + "\n")
    (out / "messages.json").write_text(json.dumps(messages, ensure_ascii=False, indent=2) + "\n")
    print(f"{out}: {len(messages)} messages, {len(drawn.files)} pictures")
    return 0
