"""Fair order on the solve queue: servers share the workers, and so do the members of a server.

RQ serves its queue (a Redis list) from the head. Instead of a scheduler in front of RQ, each new
job is *placed* in that list where fair queuing (start-time fair queuing, unit cost) puts it, so
RQ, its workers and `job.get_position()` keep working unchanged and queue positions and ETAs stay
truthful:

- every queued job has a virtual finish time (a score); the list is kept in score order;
- the virtual clock V is just below the score of the job at the head (what is served next);
- a job of member m of server g gets score max(V, F[g, m]) + n, where F[g, m] is the member's
  last score and n the number of the server's members with jobs still queued: each member
  advances by n per job, so a server as a whole advances by one per job whatever its members
  do, and a server with one question waiting goes right behind the head however many another
  server queued;
- equal scores keep arrival order.

Jobs RQ itself puts back (a retry after a worker died) go to the back of the queue, unplaced.
"""

from __future__ import annotations

import redis

from fathom.keys import PREFIX

SCORES = f"{PREFIX}:fair:scores"
"""Sorted set: queued job id → virtual finish time (entries below the head are pruned)."""
CLOCK = f"{PREFIX}:fair:clock"
"""The highest score given so far (the virtual time when the queue is empty)."""


def finish_key(flow: str) -> str:
    """Hash: member → its last score, for one server (or DM asker, or the command line)."""
    return f"{PREFIX}:fair:finish:{flow}"


_PLACE = """
local queue, scores, finish, clock = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local job_id, member = ARGV[1], ARGV[2]
if redis.call('LREM', queue, -1, job_id) == 0 then
  return -1  -- already taken by a worker (it was alone at the head)
end
local head = redis.call('LINDEX', queue, 0)
local head_score = head and redis.call('ZSCORE', scores, head)
local now
if head_score then
  now = tonumber(head_score) - 1
  redis.call('ZREMRANGEBYSCORE', scores, '-inf', '(' .. head_score)
else
  now = tonumber(redis.call('GET', clock) or '0')
  redis.call('DEL', scores)  -- nothing is queued: every score left is stale
end
local active, mine = 0, now
local flat = redis.call('HGETALL', finish)
for i = 1, #flat, 2 do
  local last = tonumber(flat[i + 1])
  if last > now then
    active = active + 1
    if flat[i] == member then mine = last end
  else
    redis.call('HDEL', finish, flat[i])
  end
end
if mine == now then active = active + 1 end
local score = mine + active
redis.call('HSET', finish, member, score)
redis.call('ZADD', scores, score, job_id)
if score > tonumber(redis.call('GET', clock) or '0') then redis.call('SET', clock, score) end
-- Insert before the first job (in queue order) of the next higher score: equal scores sit
-- together in the queue, in arrival order.
for _ = 1, 8 do
  local next_up = redis.call(
    'ZRANGEBYSCORE', scores, '(' .. score, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if #next_up == 0 then break end
  local tied = redis.call('ZRANGEBYSCORE', scores, next_up[2], next_up[2], 'LIMIT', 0, 64)
  local pivot, first = nil, nil
  for _, candidate in ipairs(tied) do
    local at = redis.call('LPOS', queue, candidate)
    if not at then
      redis.call('ZREM', scores, candidate)  -- no longer queued
    elseif first == nil or at < first then
      pivot, first = candidate, at
    end
  end
  if pivot then return redis.call('LINSERT', queue, 'BEFORE', pivot, job_id) end
end
return redis.call('RPUSH', queue, job_id)
"""


def flow_of(source: str, guild_id: int | None, user_id: int | None) -> tuple[str, str]:
    """(flow, member): the server and the asker sharing it. A DM asker is a flow of its own;
    so is the command line."""
    if guild_id is not None:
        return f"guild:{guild_id}", str(user_id)
    if user_id is not None:
        return f"user:{user_id}", str(user_id)
    return source, source


def place(conn: redis.Redis, queue_key: str, job_id: str, flow: str, member: str) -> None:
    """Move a job just pushed at the back of `queue_key` to its fair place."""
    conn.eval(_PLACE, 4, queue_key, SCORES, finish_key(flow), CLOCK, job_id, member)


def forget(conn: redis.Redis, *job_ids: str) -> None:
    """Jobs taken off the queue without being served (cancelled, cleared)."""
    if job_ids:
        conn.zrem(SCORES, *job_ids)


def expected_position(conn: redis.Redis, queue_key: str, flow: str, member: str) -> int:
    """Where a job of `member` of `flow` enqueued now would be placed (1 = next in line): the
    same arithmetic as `place`, read-only."""
    head = conn.lindex(queue_key, 0)
    if head is None:
        return 1
    head_score = conn.zscore(SCORES, head)
    if head_score is None:  # no fair order yet (fairness off, or an unplaced retry at the head)
        return int(conn.llen(queue_key)) + 1
    now = head_score - 1
    mine = now
    active = 0
    for who, raw in conn.hgetall(finish_key(flow)).items():
        last = float(raw)
        if last > now:
            active += 1
            if (who.decode() if isinstance(who, bytes) else str(who)) == member:
                mine = last
    if mine == now:
        active += 1
    return int(conn.zcount(SCORES, "-inf", mine + active)) + 1
