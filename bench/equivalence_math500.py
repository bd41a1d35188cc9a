"""Benchmark of the answer equivalence (worker/equivalence.py) on MATH-500.

    .venv/bin/python -m bench.equivalence_math500 [--data PATH] [--limit N] [--shifts N]

1. The issue's literal check: the last `\\boxed{...}` of every reference solution
   (`worker.parse.last_boxed`) against the record's `answer`, as deployed. Every pair is the same
   string, so this measures the extraction, not the equivalence.
2. What measures the equivalence: each reference answer against the other ways of writing it
   that `bench.answer_variants.REWRITES` makes (each must be "same"), and against the changed
   answers of `PERTURBATIONS` (each must be "different"): per rule, with every miss listed.
3. False "same" across problems: each answer against the answers of the next `--shifts`
   records, through math-verify (the fast path skipped).
4. Time per pair with the pool warm (started, its workers past their warm-up): every pair of
   2 as voting compares them (`AnswerChecker.compare`: fast path, then both directions in the
   pool), p50/p95/worst; beside it the pool's own round trip (`1` vs `2`, 200 times) and the
   pool's start.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

from bench.answer_variants import PERTURBATIONS, REWRITES, Rule, variants
from worker.equivalence import AnswerChecker, Verdict, normalise
from worker.parse import last_boxed

DEFAULT_DATA = (
    Path(__file__).resolve().parent.parent.parent / "shared/datasets/fathom-eval/math_test.jsonl"
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def timings(times: list[float], pairs: list[tuple[str, str]]) -> dict[str, object]:
    worst = max(range(len(times)), key=times.__getitem__)
    return {
        "pairs": len(times),
        "p50_ms": round(percentile(times, 50) * 1000, 2),
        "p95_ms": round(percentile(times, 95) * 1000, 2),
        "max_ms": round(times[worst] * 1000, 1),
        "worst_pair": pairs[worst],
    }


def literal(checker: AnswerChecker, rows: list[dict[str, str]]) -> dict[str, object]:
    misses: list[dict[str, object]] = []
    identical = 0
    for index, row in enumerate(rows):
        boxed = last_boxed(row["solution"])
        if boxed is None:
            misses.append({"record": index, "answer": row["answer"], "why": "no \\boxed{}"})
            continue
        identical += boxed == row["answer"]
        verdict = checker.compare(boxed, row["answer"])
        if not verdict.same:
            misses.append(
                {"record": index, "boxed": boxed, "answer": row["answer"], "why": verdict.value}
            )
    return {
        "pairs": len(rows),
        "agreed": len(rows) - len(misses),
        "identical_strings": identical,
        "misses": misses,
    }


def by_rule(
    checker: AnswerChecker,
    rows: list[dict[str, str]],
    rules: dict[str, Rule],
    want_same: bool,
    times: list[float],
    timed: list[tuple[str, str]],
) -> dict[str, object]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    misses: list[dict[str, str]] = []
    fast = 0
    for row in rows:
        answer = row["answer"]
        for variant in variants(answer, row["problem"], rules):
            start = time.perf_counter()
            verdict = checker.compare(answer, variant.answer)
            times.append(time.perf_counter() - start)
            timed.append((answer, variant.answer))
            fast += verdict is Verdict.IDENTICAL
            counts[variant.rule][0] += 1
            if verdict.same is want_same:
                counts[variant.rule][1] += 1
            else:
                misses.append(
                    {"rule": variant.rule, "a": answer, "b": variant.answer, "got": verdict.value}
                )
    total = sum(n for n, _ in counts.values())
    right = sum(ok for _, ok in counts.values())
    return {
        "pairs": total,
        "right": right,
        "right_pct": round(100 * right / total, 2) if total else None,
        "settled_by_the_fast_path": fast,
        "per_rule": {rule: {"pairs": n, "right": ok} for rule, (n, ok) in counts.items()},
        "misses": misses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--shifts", type=int, default=5)
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]
    rows = rows[: args.limit] if args.limit else rows
    answers = [str(row["answer"]) for row in rows]

    with AnswerChecker() as checker:
        start = time.perf_counter()
        checker.verify_many(r"\frac{1}{2}", ["0.5"])
        report: dict[str, object] = {"pool_start_s": round(time.perf_counter() - start, 2)}
        round_trip: list[float] = []
        for _ in range(200):
            start = time.perf_counter()
            checker.verify_many("1", ["2"])
            round_trip.append(time.perf_counter() - start)
        report["pool_round_trip_1_vs_2"] = timings(round_trip, [("1", "2")] * 200)

        report["literal_boxed_vs_answer"] = literal(checker, rows)
        times: list[float] = []
        timed: list[tuple[str, str]] = []
        report["rewrites_must_be_same"] = by_rule(checker, rows, REWRITES, True, times, timed)
        report["perturbations_must_differ"] = by_rule(
            checker, rows, PERTURBATIONS, False, times, timed
        )
        report["time_per_pair_warm"] = timings(times, timed)
        asked = [
            (pair, t)
            for pair, t in zip(timed, times, strict=True)
            if normalise(pair[0]) != normalise(pair[1])
        ]
        report["time_per_pair_warm_math_verify_asked"] = timings(
            [t for _, t in asked], [pair for pair, _ in asked]
        )
        report["pairs_over_20_ms"] = [pair for pair, t in asked if t > 0.02]

        others = [
            (answers[i], answers[(i + shift) % len(answers)])
            for shift in range(1, args.shifts + 1)
            for i in range(len(answers))
        ]
        verdicts = [checker.verify_many(a, [b])[0] for a, b in others]
        same = [(a, b) for (a, b), v in zip(others, verdicts, strict=True) if v.same]
        report["other_problems_math_verify"] = {
            "pairs": len(others),
            "same_string": sum(normalise(a) == normalise(b) for a, b in same),
            "different_strings_called_same": [
                (a, b) for a, b in same if normalise(a) != normalise(b)
            ],
            "unknown": sum(v in (Verdict.TIMED_OUT, Verdict.FAILED) for v in verdicts),
        }
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
