"""Benchmark of issue B's renderer over every MATH-500 solution.

    .venv/bin/python -m bench.render_math500 [--data PATH] [--limit N]

Reports, with the primary (MathJax) and secondary (matplotlib) engines as deployed:
- per-formula: share drawn as a picture by each engine when every formula is asked for as a
  picture (cold cache), and the time of one chain call (p50/p95);
- per-engine alone: what each engine draws on its own (the measurement behind the choice);
- whole-solution drawing (`draw_solution`, cold cache then warm; messages as the bot packs
  them): p50/p95 time, how formulas were shown (exact Unicode text, picture, fallback), and
  the cache hit rate of the second pass.
`[asy]` diagram blocks are set aside by the segmenter (the document shows a one-line note), so
their labels are not counted as formulas.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from pathlib import Path

from bot.logic.compose import document_pieces
from bot.logic.pack import pack
from worker.render import mathjax
from worker.render.chain import Engine, Picture, RenderCache, Renderer
from worker.render.document import DrawStats, draw_solution
from worker.render.mpl import MatplotlibEngine
from worker.render.segment import Math, segment

DEFAULT_DATA = (
    Path(__file__).resolve().parent.parent.parent / "shared/datasets/fathom-eval/math_test.jsonl"
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def ms(values: list[float]) -> str:
    return f"p50 {percentile(values, 50) * 1000:.2f} ms, p95 {percentile(values, 95) * 1000:.2f} ms"


def formulas(solutions: list[str]) -> list[tuple[str, bool]]:
    return [(s.tex, s.display) for text in solutions for s in segment(text) if isinstance(s, Math)]


def engines(names: list[str]) -> list[Engine]:
    out: list[Engine] = []
    for name in names:
        if name == "mathjax":
            if not mathjax.installed():
                raise SystemExit("node + MathJax are not installed: run bin/setup")
            out.append(mathjax.MathJaxEngine())
        else:
            out.append(MatplotlibEngine())
    return out


def per_formula(items: list[tuple[str, bool]], names: list[str]) -> dict[str, object]:
    renderer = Renderer(engines(names), RenderCache())
    renderer.formula("x", display=True)  # start the node process outside the timing
    renderer.cache = RenderCache()
    shown: Counter[str] = Counter()
    times: list[float] = []
    failures: Counter[str] = Counter()
    for tex, display in items:
        start = time.perf_counter()
        result = renderer.formula(tex, display=display)
        times.append(time.perf_counter() - start)
        if isinstance(result, Picture):
            shown[result.engine] += 1
        else:
            shown[result.how] += 1
            failures[tex[:60]] += 1
    pictures = sum(shown[n] for n in names)
    return {
        "engines": "+".join(names),
        "formulas": len(items),
        "shown": dict(shown),
        "picture_share": pictures / len(items),
        "time": ms(times),
        "not_drawn_examples": [t for t, _ in failures.most_common(8)],
    }


def layouts(rows: list[dict[str, str]]) -> dict[str, object]:
    renderer = Renderer(engines(["mathjax", "matplotlib"]), RenderCache())
    renderer.formula("x", display=True)
    renderer.cache = RenderCache()
    report: dict[str, object] = {}
    for label in ("cold", "warm"):
        hits, misses = renderer.cache.hits, renderer.cache.misses
        stats = DrawStats()
        times: list[float] = []
        messages: list[int] = []
        for row in rows:
            start = time.perf_counter()
            out = draw_solution(row["solution"], row.get("answer"), renderer=renderer)
            times.append(time.perf_counter() - start)
            messages.append(len(pack(document_pieces(out.document))))
            s = out.stats
            stats.formulas += s.formulas
            stats.unicode_inline += s.unicode_inline
            stats.pictures.update(s.pictures)
            stats.unicode_fallback += s.unicode_fallback
            stats.source_fallback += s.source_fallback
            stats.diagrams += s.diagrams
        lookups = renderer.cache.hits - hits + renderer.cache.misses - misses
        pictures = sum(stats.pictures.values())
        needing_picture = stats.formulas - stats.unicode_inline
        report[label] = {
            "solutions": len(rows),
            "layout_time": ms(times),
            "layout_max_ms": round(max(times) * 1000, 1),
            "messages_per_solution": f"mean {statistics.mean(messages):.1f}, max {max(messages)}",
            "formulas": stats.formulas,
            "exact_unicode_inline": stats.unicode_inline,
            "pictures_by_engine": dict(stats.pictures),
            "unicode_fallback": stats.unicode_fallback,
            "source_fallback": stats.source_fallback,
            "asy_diagrams_set_aside": stats.diagrams,
            "picture_share_of_formulas_needing_one": pictures / max(1, needing_picture),
            "cache_hit_rate": (renderer.cache.hits - hits) / max(1, lookups),
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]
    rows = rows[: args.limit] if args.limit else rows
    items = formulas([r["solution"] for r in rows])
    report = {
        "chain (mathjax -> matplotlib -> unicode -> source)": per_formula(
            items, ["mathjax", "matplotlib"]
        ),
        "mathjax alone": per_formula(items, ["mathjax"]),
        "matplotlib alone (with rewrites)": per_formula(items, ["matplotlib"]),
        "draw_solution (then packed as the bot posts it)": layouts(rows),
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
