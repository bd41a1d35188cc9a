"""Benchmark of issue 11's answer equivalence over MATH-500.

    .venv/bin/python -m bench.equivalence_math500 [--data PATH] [--limit N] [--shifts N]

For every record, the last `\\boxed{...}` of the reference solution (`worker.parse.last_boxed`)
is compared with the record's `answer`:
1. as deployed (`AnswerChecker.compare`: the normalised-string fast path, then math-verify in the
   pool): pairs, agreed %, every disagreement with its category;
2. the same pairs forced through math-verify in the pool (`AnswerChecker.verify_many`, no fast
   path): agreement, and the time of one pair with the pool warm (p50, p95, worst pair), beside
   the pool's own round trip (a trivial pair, `1` vs `2`);
3. false "same": each record's answer against the answers of the next `--shifts` records
   (other problems), through math-verify: how many of the pairs it calls the same are the same
   string, the others listed for reading by hand, and the same timings.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from worker.equivalence import AnswerChecker, Verdict, normalise
from worker.parse import last_boxed

DEFAULT_DATA = (
    Path(__file__).resolve().parent.parent.parent / "shared/datasets/fathom-eval/math_test.jsonl"
)

CATEGORY = {
    Verdict.DIFFERENT: "math-verify says different",
    Verdict.TOO_LONG: "over the size limit and the strings differ",
    Verdict.TIMED_OUT: "timed out (worker killed)",
    Verdict.FAILED: "worker died or pool broke",
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def timings(times: list[float], pairs: list[tuple[str, str]]) -> dict[str, object]:
    worst = max(range(len(times)), key=times.__getitem__)
    return {
        "p50_ms": round(percentile(times, 50) * 1000, 2),
        "p95_ms": round(percentile(times, 95) * 1000, 2),
        "max_ms": round(times[worst] * 1000, 1),
        "worst_pair": pairs[worst],
    }


def deployed(checker: AnswerChecker, pairs: list[tuple[str | None, str]]) -> dict[str, object]:
    disagreements: list[dict[str, object]] = []
    times: list[float] = []
    for index, (boxed, answer) in enumerate(pairs):
        if boxed is None:
            category = "no \\boxed{} in the reference solution"
        else:
            start = time.perf_counter()
            verdict = checker.compare(boxed, answer)
            times.append(time.perf_counter() - start)
            if verdict.same:
                continue
            category = CATEGORY[verdict]
        disagreements.append(
            {"record": index, "boxed": boxed, "answer": answer, "category": category}
        )
    agreed = len(pairs) - len(disagreements)
    return {
        "pairs": len(pairs),
        "agreed": agreed,
        "agreed_pct": round(100 * agreed / len(pairs), 2),
        "time_per_pair": f"p50 {percentile(times, 50) * 1e6:.0f} µs, "
        f"p95 {percentile(times, 95) * 1e6:.0f} µs",
        "disagreements": disagreements,
    }


def through_math_verify(
    checker: AnswerChecker, pairs: list[tuple[str, str]]
) -> tuple[list[Verdict], list[float]]:
    verdicts: list[Verdict] = []
    times: list[float] = []
    for a, b in pairs:
        start = time.perf_counter()
        verdicts.extend(checker.verify_many(a, [b]))
        times.append(time.perf_counter() - start)
    return verdicts, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--shifts", type=int, default=5)
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]
    rows = rows[: args.limit] if args.limit else rows
    pairs = [(last_boxed(r["solution"]), str(r["answer"])) for r in rows]
    answers = [answer for _, answer in pairs]

    with AnswerChecker() as checker:
        report: dict[str, object] = {"deployed": deployed(checker, pairs)}

        start = time.perf_counter()
        checker.verify_many(r"\frac{1}{2}", ["0.5"])
        report["pool_start_s"] = round(time.perf_counter() - start, 2)
        checker.verify_many(r"\left( 3, \frac{\pi}{2} \right)", [r"(3,\frac{\pi}{2})"])
        _, times = through_math_verify(checker, [("1", "2")] * 200)
        report["pool_round_trip_1_vs_2"] = timings(times, [("1", "2")] * 200)

        forced = [(boxed, answer) for boxed, answer in pairs if boxed is not None]
        verdicts, times = through_math_verify(checker, forced)
        report["math_verify_only"] = {
            "pairs": len(forced),
            "agreed": sum(v.same for v in verdicts),
            "agreed_pct": round(100 * sum(v.same for v in verdicts) / len(forced), 2),
            "disagreements": [
                {"boxed": b, "answer": a, "category": CATEGORY[v]}
                for (b, a), v in zip(forced, verdicts, strict=True)
                if not v.same
            ],
            "warm_time_per_pair": timings(times, forced),
        }

        others = [
            (answers[i], answers[(i + shift) % len(answers)])
            for shift in range(1, args.shifts + 1)
            for i in range(len(answers))
        ]
        verdicts, times = through_math_verify(checker, others)
        same = [(a, b) for (a, b), v in zip(others, verdicts, strict=True) if v.same]
        report["other_problems_math_verify"] = {
            "pairs": len(others),
            "same_string": sum(normalise(a) == normalise(b) for a, b in same),
            "different_strings_called_same": [
                (a, b) for a, b in same if normalise(a) != normalise(b)
            ],
            "unknown": sum(v in (Verdict.TIMED_OUT, Verdict.FAILED) for v in verdicts),
            "warm_time_per_pair": timings(times, others),
        }
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
