"""Issue B: a solution's Markdown + LaTeX laid out as Discord messages with rendered math.

`layout_solution` is the entry point; importing this package stays light (the engines, Pillow
and matplotlib load on first use), so the bot can import it cheaply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from worker.render.layout import RenderedSolution


def layout_solution(
    solution: str, answer: str | None, reasoning: str | None = None
) -> RenderedSolution:
    """The solution as an ordered list of messages (`.messages`) and the files they name
    (`.files`): see worker.render.layout."""
    from worker.render.layout import layout_solution as layout

    return layout(solution, answer, reasoning)


def __getattr__(name: str) -> Any:
    if name == "RenderedSolution":
        from worker.render.layout import RenderedSolution

        return RenderedSolution
    raise AttributeError(name)


__all__ = ["RenderedSolution", "layout_solution"]
