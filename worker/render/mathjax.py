"""The primary engine: MathJax 3 + resvg in one long-lived node process (mathjax/server.js).

One JSON request per line on the child's stdin, one response per line on its stdout. Every
request has a deadline; a child that misses it (or dies) is killed and a fresh one is started
for the next request, so a hostile formula costs at most one timeout.
"""

from __future__ import annotations

import base64
import json
import os
import re
import selectors
import shutil
import subprocess
import threading
import time
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from worker.render.errors import EngineUnavailable, RenderError
from worker.render.fonts import cjk_font_files
from worker.render.style import STYLE
from worker.render.texutil import brace_end

SERVER_DIR = Path(__file__).resolve().parent / "mathjax"
SERVER_JS = SERVER_DIR / "server.js"


def font_files() -> list[str]:
    """DejaVu fonts for text MathJax's own fonts lack (accents, Vietnamese, arrows, other
    scripts), which ship with matplotlib, then a CJK font where one is installed (resvg falls
    back to it for the Chinese, Japanese and Korean characters DejaVu lacks)."""
    spec = find_spec("matplotlib")
    found: list[str] = []
    if spec is not None and spec.origin is not None:
        ttf = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf"
        names = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf")
        found += [str(ttf / name) for name in names if (ttf / name).exists()]
    return found + [str(path) for path in cjk_font_files()]


def node_binary() -> str | None:
    return os.environ.get("FATHOM_NODE") or shutil.which("node")


def installed() -> bool:
    """node is on PATH and `bin/setup` has installed the npm packages."""
    return (
        node_binary() is not None
        and (SERVER_DIR / "node_modules" / "mathjax-full").is_dir()
        and (SERVER_DIR / "node_modules" / "@resvg" / "resvg-js").is_dir()
    )


_ARRAY_SPEC = re.compile(r"\\begin\{array\}\s*(?=\{)")
_AT_SPACING = re.compile(r"@\{[^{}]*\}")


_CLINE = re.compile(r"\\cline\s*\{[^{}]*\}")


def compatible(tex: str) -> str:
    """Spell what MathJax 3 rejects in array layouts (MATH-500's written-out arithmetic):
    `@{...}` column spacing is dropped, and a partial rule `\\cline{2-4}` becomes a full
    `\\hline` (the rule under a sum, slightly longer)."""
    tex = _CLINE.sub(r"\\hline", tex)
    for m in reversed(list(_ARRAY_SPEC.finditer(tex))):
        end = brace_end(tex, m.end())
        if end != -1:
            tex = tex[: m.end()] + _AT_SPACING.sub("", tex[m.end() : end]) + tex[end:]
    return tex


class MathJaxEngine:
    name = "mathjax"

    def __init__(self, timeout_s: float = 3.0, startup_timeout_s: float = 20.0) -> None:
        self.timeout_s = timeout_s
        self.startup_timeout_s = startup_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._next_id = 0
        self._lock = threading.Lock()
        self._owner_pid = os.getpid()
        """The process that started the child: a forked copy (an RQ work horse) starts its own
        rather than talk over pipes its parent also uses."""
        self.starts = 0
        """Child processes started so far (a timeout or crash starts a new one)."""

    # --- public -------------------------------------------------------------------------------
    def formula(self, tex: str, display: bool, emphasis: bool = False) -> bytes:
        request = {"op": "formula", "tex": compatible(tex), "display": display}
        return self._png({**request, "emphasis": emphasis})

    def paragraph(self, pieces: list[dict[str, Any]]) -> bytes:
        pieces = [{**p, "tex": compatible(p["tex"])} if "tex" in p else p for p in pieces]
        return self._png({"op": "paragraph", "pieces": pieces})

    def close(self) -> None:
        with self._lock:
            self._kill()

    # --- the child process --------------------------------------------------------------------
    def _png(self, request: dict[str, Any]) -> bytes:
        with self._lock:
            reply = self._call(request)
        if not reply.get("ok"):
            raise RenderError(f"mathjax: {reply.get('error', 'failed')}")
        png = base64.b64decode(reply["png"])
        return png

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._proc is not None and self._owner_pid != os.getpid():
            self._disown()
        fresh = self._proc is None or self._proc.poll() is not None
        if fresh:
            self._start()
        self._next_id += 1
        request = {"id": self._next_id, **request}
        proc = self._proc
        assert proc is not None
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            proc.stdin.flush()
        except OSError as exc:
            self._kill()
            raise EngineUnavailable(f"mathjax process gone: {exc}") from exc
        # The first request also waits for node to load MathJax.
        timeout = self.startup_timeout_s if fresh else self.timeout_s
        line = self._read_line(time.monotonic() + timeout)
        reply: dict[str, Any] = json.loads(line)
        if reply.get("id") != request["id"]:
            self._kill()
            raise EngineUnavailable("mathjax process answered out of order")
        return reply

    def _start(self) -> None:
        node = node_binary()
        if node is None or not installed():
            raise EngineUnavailable("node or the MathJax npm packages are not installed")
        config = {
            "fg": STYLE.fg,
            "bg": STYLE.bg,
            "accent": STYLE.accent,
            "emPx": STYLE.em_px,
            "scale": STYLE.scale,
            "paragraphWidthEm": STYLE.paragraph_width_em,
            "maxTexChars": STYLE.max_tex_chars,
            "maxWidthPx": STYLE.max_width_px,
            "maxHeightPx": STYLE.max_height_px,
            "maxPixels": STYLE.max_pixels,
            "fontFiles": font_files(),
        }
        self._kill()
        try:
            self._proc = subprocess.Popen(
                [node, "--max-old-space-size=512", str(SERVER_JS), json.dumps(config)],
                cwd=SERVER_DIR,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            raise EngineUnavailable(f"cannot start node: {exc}") from exc
        self._buffer = b""
        self._owner_pid = os.getpid()
        self.starts += 1

    def _read_line(self, deadline: float) -> bytes:
        proc = self._proc
        assert proc is not None
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    self._kill()
                    raise RenderError("mathjax: timed out (process restarted)")
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    self._kill()
                    raise EngineUnavailable("mathjax process exited")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _disown(self) -> None:
        """Forget a child inherited through fork without killing it (it is the parent's)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
        self._buffer = b""

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
        self._buffer = b""
