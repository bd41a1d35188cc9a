"""Fair order on the solve queue, on real Redis and real RQ queues."""

from __future__ import annotations

import redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from fathom.contract import Origin, SolveRequest
from fathom.queue import enqueue_solve, solve_queue
from fathom.settings import Settings, get_settings


def ask(conn: redis.Redis, settings: Settings, guild: int | None, user: int) -> str:
    request = SolveRequest(
        question=f"{guild}/{user}", render=False, origin=Origin(guild_id=guild, user_id=user)
    )
    return enqueue_solve(conn, request, settings)


def order(conn: redis.Redis, settings: Settings, names: dict[str, str]) -> list[str]:
    return [names[job_id] for job_id in solve_queue(conn, settings).get_job_ids()]


def test_one_question_of_a_quiet_server_goes_right_behind_the_head(
    redis_conn: redis.Redis,
) -> None:
    settings = get_settings()
    for _ in range(200):
        ask(redis_conn, settings, guild=1, user=10)
    quiet = ask(redis_conn, settings, guild=2, user=20)
    queue = solve_queue(redis_conn, settings)
    assert queue.count == 201
    assert queue.get_job_ids().index(quiet) == 1


def test_servers_asking_in_blocks_are_served_in_turn(redis_conn: redis.Redis) -> None:
    settings = get_settings()
    names: dict[str, str] = {}
    for guild in (1, 2, 3):
        for n in range(4):
            names[ask(redis_conn, settings, guild=guild, user=guild * 10)] = f"{guild}.{n}"
    assert order(redis_conn, settings, names) == [
        f"{guild}.{n}" for n in range(4) for guild in (1, 2, 3)
    ]


def test_one_member_does_not_crowd_out_the_rest_of_the_server(redis_conn: redis.Redis) -> None:
    settings = get_settings()
    names: dict[str, str] = {}
    for n in range(50):
        names[ask(redis_conn, settings, guild=1, user=10)] = f"flood{n}"
    names[ask(redis_conn, settings, guild=1, user=11)] = "classmate"
    names[ask(redis_conn, settings, guild=2, user=20)] = "other server"
    served = order(redis_conn, settings, names)
    # Each is within the next few places, not behind the 50.
    assert served.index("classmate") <= 3
    assert served.index("other server") <= 3


def test_a_server_as_a_whole_gets_one_share_however_many_members_ask(
    redis_conn: redis.Redis,
) -> None:
    settings = get_settings()
    names: dict[str, str] = {}
    for n in range(10):
        for member in range(3):  # three busy members of server 1
            names[ask(redis_conn, settings, guild=1, user=10 + member)] = f"1:{n}"
    for n in range(10):
        names[ask(redis_conn, settings, guild=2, user=20)] = f"2:{n}"
    first_twenty = order(redis_conn, settings, names)[:20]
    # Server 2 arrived last with one member, yet holds about half of the next places.
    assert 8 <= sum(name.startswith("2:") for name in first_twenty) <= 11


def test_the_order_holds_while_workers_take_jobs(redis_conn: redis.Redis) -> None:
    settings = get_settings()
    queue = solve_queue(redis_conn, settings)
    names: dict[str, str] = {}
    for n in range(6):
        names[ask(redis_conn, settings, guild=1, user=10)] = f"A{n}"
    # A worker takes two (the job function is unknown here: they fail, which is fine).
    worker = SimpleWorker([queue], connection=redis_conn, serializer=JSONSerializer)
    worker.work(burst=True, max_jobs=2, logging_level="CRITICAL")
    names[ask(redis_conn, settings, guild=2, user=20)] = "B0"
    assert order(redis_conn, settings, names) == ["A2", "B0", "A3", "A4", "A5"]


def test_first_come_first_served_when_fairness_is_off(redis_conn: redis.Redis) -> None:
    settings = get_settings().model_copy(update={"fair_queue": False})
    names: dict[str, str] = {}
    for n in range(3):
        names[ask(redis_conn, settings, guild=1, user=10)] = f"A{n}"
    names[ask(redis_conn, settings, guild=2, user=20)] = "B0"
    assert order(redis_conn, settings, names) == ["A0", "A1", "A2", "B0"]
