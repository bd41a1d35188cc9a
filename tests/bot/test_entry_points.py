"""The other ways in: a DM, /solve in a DM, the context menu, a follow-up, Solve again."""

from __future__ import annotations

import itertools

import redis

from bot import keys as bot_keys
from devtools.fakediscord import MessageRecord
from devtools.rq_threads import ThreadWorkers
from fathom.contract import SolveRequest
from simulator.server import SimulatorServer
from tests.bot.conftest import World, delivery
from tests.bot.test_guild import has_button


def solution_end(world: World, channel_id: int) -> MessageRecord | None:
    return next((m for m in world.posts(channel_id) if has_button(m, "fathom:again:")), None)


def last_request(conn: redis.Redis, job_id: str) -> SolveRequest:
    from rq.job import Job
    from rq.serializers import JSONSerializer

    job = Job.fetch(job_id, connection=conn, serializer=JSONSerializer)
    return SolveRequest.model_validate(job.args[0])


def job_ids(conn: redis.Redis) -> list[str]:
    return [
        k.decode().split(":")[3]
        for k in conn.scan_iter(match=bot_keys.job_key("*"))
        if k.count(b":") == 3
    ]


async def test_a_plain_dm_is_a_question_answered_as_a_reply_chain(
    world: World, workers: ThreadWorkers
) -> None:
    fake = world.fake
    async with world.bot():
        asked = await fake.send_dm(world.student, "Compute $\\frac{1}{2} + \\frac{1}{3}$ ∑")
        dm = fake.dm_channel(world.student)
        end = await world.wait(lambda: solution_end(world, dm.id), "the solution in the DM")
        status = world.posts(dm)[0]
        await world.wait(lambda: "Solved" in status.content, "the final status")
    messages = world.posts(dm)
    assert status.reference is not None
    assert int(status.reference["message_id"]) == asked.id
    for earlier, later in itertools.pairwise(messages):
        assert later.reference is not None
        assert int(later.reference["message_id"]) == earlier.id
    assert end is messages[-1]
    assert "Your question" in status.content
    assert all(m.allowed_mentions == {"parse": []} for m in messages)


async def test_slash_command_in_a_dm(world: World, workers: ThreadWorkers) -> None:
    fake = world.fake
    dm = fake.dm_channel(world.student)
    async with world.bot():
        interaction = await fake.send_slash_command(
            "solve", user=world.student, channel=dm, options={"question": "What is 2+2?"}
        )
        ack = await fake.wait_for_ack(interaction)
        end = await world.wait(lambda: solution_end(world, dm.id), "the solution in the DM")
        status = world.posts(dm)[0]
        await world.wait(lambda: "Solved" in status.content, "the final status")
    assert ack["at"] < 3.0
    assert fake.threads_of(dm) == []
    assert "Your question" in status.content
    after_status = world.posts(dm)[1]
    assert after_status.reference is not None
    assert int(after_status.reference["message_id"]) == status.id
    assert end is world.posts(dm)[-1]


async def test_private_delivery_goes_to_dms(world: World, workers: ThreadWorkers) -> None:
    fake = world.fake
    async with world.bot():
        await fake.send_slash_command(
            "solve",
            user=world.student,
            channel=world.channel,
            options={"question": "What is 3+3?", "private": True},
        )
        dm = fake.dm_channel(world.student)
        await world.wait(lambda: solution_end(world, dm.id), "the solution in the DM")
    assert world.posts(world.channel) == []
    assert fake.threads_of(world.channel) == []


async def test_context_menu_solves_the_message(world: World, workers: ThreadWorkers) -> None:
    fake = world.fake
    async with world.bot():
        problem = await fake.send_message(world.classmate, world.channel, "Find x if 2x = 10.")
        interaction = await fake.send_message_command(
            "Solve with Fathom", user=world.student, target=problem
        )
        await fake.wait_for_ack(interaction)
        thread = await world.thread()
        await world.wait(lambda: solution_end(world, thread.id), "the solution")
    status = world.posts(world.channel)[0]
    assert status.reference is not None
    assert int(status.reference["message_id"]) == problem.id
    assert thread.name == "Find x if 2x = 10."
    assert f"<@{world.student.id}> asked" in status.content


async def test_a_follow_up_in_the_thread_carries_the_question_and_solution(
    world: World, workers: ThreadWorkers
) -> None:
    fake = world.fake
    async with world.bot() as bot:
        await fake.send_slash_command(
            "solve", user=world.student, channel=world.channel, options={"question": "1+2?"}
        )
        thread = await world.thread()
        await world.wait(lambda: solution_end(world, thread.id), "the first solution")
        await world.wait(lambda: not delivery(bot).following(), "the first job settled")
        # Someone else's message in the thread is not a follow-up.
        await fake.send_message(world.classmate, thread, "nice")
        follow_up = await fake.send_message(world.student, thread, "And 1+3?")
        follow_status = await world.wait(
            lambda: next(
                (
                    m
                    for m in world.posts(thread)
                    if m.reference and int(m.reference["message_id"]) == follow_up.id
                ),
                None,
            ),
            "the follow-up's status",
        )
        await world.wait(lambda: "Solved" in follow_status.content, "the follow-up solved")
    answered = [m for m in world.posts(thread) if m.reference]
    assert len(answered) == 1  # only the asker's message became a question
    [job_id] = [j for j in job_ids(world.redis) if last_request(world.redis, j).history]
    request = last_request(world.redis, job_id)
    assert request.question == "And 1+3?"
    [turn] = request.history
    assert turn.question == "1+2?"
    assert turn.solution.strip()
    assert "</think>" not in turn.solution


async def test_solve_again_is_a_new_sample_in_the_same_thread(
    world: World, workers: ThreadWorkers, fake_tgi: SimulatorServer
) -> None:
    fake = world.fake
    async with world.bot() as bot:
        await fake.send_slash_command(
            "solve", user=world.student, channel=world.channel, options={"question": "5*5?"}
        )
        thread = await world.thread()
        end = await world.wait(lambda: solution_end(world, thread.id), "the solution")
        await world.wait(lambda: not delivery(bot).following(), "the first job settled")
        again = next(c for c in end.custom_ids() if c.startswith("fathom:again:"))
        click = await fake.click_button(end, again, user=world.student)
        await fake.wait_for_ack(click)
        second = await world.wait(
            lambda: [m for m in world.posts(thread) if has_button(m, "fathom:again:")][1:],
            "the second solution",
        )
        await world.wait(lambda: not delivery(bot).following(), "the second job settled")
    assert second
    requests = [last_request(world.redis, j) for j in job_ids(world.redis)]
    seeds = {r.seed for r in requests}
    assert len(requests) == 2
    assert len(seeds) == 2
