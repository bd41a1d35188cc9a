"""`fathom render` as a person would run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fathom.contract import AnswerBlock, Document


def fathom(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "render", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_render_one_formula(tmp_path: Path) -> None:
    out = tmp_path / "f.png"
    proc = fathom(r"\frac{a+b}{2}", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes().startswith(b"\x89PNG")


def test_render_unrenderable_formula_says_so(tmp_path: Path) -> None:
    out = tmp_path / "g.png"
    proc = fathom(r"\input{/etc/passwd}", "-o", str(out))
    assert proc.returncode == 1
    assert "\\input{/etc/passwd}" in proc.stdout
    assert "root:" not in proc.stdout
    assert not out.exists()


def test_render_markdown_solution(tmp_path: Path) -> None:
    md = tmp_path / "solution.md"
    md.write_text("First $x^2$.\n\\[\\int_0^1 x\\,dx = \\frac12\\]\nSo $\\boxed{\\frac12}$.\n")
    out = tmp_path / "out"
    proc = fathom("--markdown", str(md), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    messages = json.loads((out / "messages.json").read_text())
    assert messages[0] == {"content": "First x².", "files": ["math-001.png"]}
    assert messages[-1]["content"].startswith("**Final answer:** 1/2")
    assert messages[-1]["files"] == ["answer.png"]
    document = Document.model_validate_json((out / "document.json").read_text())
    assert document.blocks[-1] == AnswerBlock(latex="\\frac12", text="1/2", file="answer.png")
    for m in messages:
        for name in m["files"]:
            assert (out / name).read_bytes().startswith(b"\x89PNG")


def test_render_usage_errors() -> None:
    assert fathom("--markdown", "x.md").returncode == 2
    assert fathom(r"\frac12").returncode == 2
    assert fathom("--markdown", "/nonexistent.md", "--out", "/tmp/x").returncode == 2
