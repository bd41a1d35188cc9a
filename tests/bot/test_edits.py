from __future__ import annotations

from bot.logic.edits import EditBudget, EditScheduler


def scheduler(
    message_s: float = 2.0, channel_s: float = 0.0, rate: float = 100.0, burst: int = 100
) -> EditScheduler[str]:
    return EditScheduler(EditBudget(message_s, channel_s, rate, burst))


def test_repeated_requests_are_one_edit() -> None:
    edits = scheduler()
    for _ in range(5):
        edits.request("a", 1, now=0.0)
    assert edits.take_due(0.0) == ["a"]
    assert edits.take_due(0.1) == []


def test_a_message_waits_its_interval() -> None:
    edits = scheduler(message_s=2.0)
    edits.request("a", 1, 0.0)
    assert edits.take_due(0.0) == ["a"]
    edits.request("a", 1, 0.5)
    assert edits.take_due(1.9) == []
    assert edits.take_due(2.0) == ["a"]


def test_a_channel_waits_its_interval_across_messages() -> None:
    edits = scheduler(message_s=0.0, channel_s=1.0)
    edits.request("a", 1, 0.0)
    edits.request("b", 1, 0.0)
    edits.request("c", 2, 0.0)
    assert edits.take_due(0.0) == ["a", "c"]
    assert edits.take_due(0.5) == []
    assert edits.take_due(1.0) == ["b"]


def test_the_bot_wide_rate_holds_for_hundreds_of_jobs() -> None:
    edits = scheduler(message_s=2.0, rate=5.0, burst=5)
    done: list[tuple[float, str]] = []
    for tick in range(0, 400):  # 100 s at 0.25 s ticks, 500 jobs always wanting an edit
        now = tick * 0.25
        for job in range(500):
            edits.request(f"job{job}", job, now)
        done.extend((now, key) for key in edits.take_due(now))
    assert 5 * 100 - 5 <= len(done) <= 5 * 100 + 5
    for second in range(1, 100):  # after the initial burst, never more than the rate
        assert sum(1 for at, _ in done if second <= at < second + 1) <= 5
    # Oldest request first: every job got edits, none starved.
    assert len({key for _, key in done}) == 500


def test_forget_drops_a_waiting_edit() -> None:
    edits = scheduler()
    edits.request("a", 1, 0.0)
    edits.forget("a")
    assert len(edits) == 0
    assert edits.take_due(1.0) == []


def test_a_final_edit_goes_before_waiting_progress() -> None:
    edits = scheduler(rate=1.0, burst=1)
    for job in ("a", "b", "c"):
        edits.request(job, 1, 0.0)
    edits.request("z", 2, 1.0, urgent=True)
    assert edits.take_due(1.0) == ["z"]
    assert edits.take_due(2.0) == ["a"]
