"""The headend workers' roster (docs/adr/0021): who is alive, by the MQTT session each holds.

Each worker's link holds a persistent MQTT session in the workers' shared subscription of the
gateways' events, and the broker hands that session its share even while the worker is away
(Mosquitto 2.0 queues it). A worker that comes back with the same id gets its share; one that
never comes back would keep a share of the events for ever. So every worker says it is alive
(:meth:`Roster.beat`) in the queue's database, and a worker that finds another silent for a
lease takes the silent one's session over (:meth:`Roster.gone` hands each silent one to one
worker only): it records what waited there and ends the session
(:meth:`zse.headend.gateway.GatewayLink.adopt`).

Same statements on SQLite and PostgreSQL; the table is created with ``CREATE ... IF NOT
EXISTS`` under an advisory lock, as ``headend_jobs``.
"""

from __future__ import annotations

from zse.headend.queue import JobQueue

__all__ = ["Roster"]

_TABLE = (
    "CREATE TABLE IF NOT EXISTS headend_workers ("
    " owner TEXT PRIMARY KEY, session TEXT NOT NULL, seen DOUBLE PRECISION NOT NULL)"
)
_BEAT = (
    "INSERT INTO headend_workers (owner, session, seen) VALUES (?, ?, ?)"
    " ON CONFLICT (owner) DO UPDATE SET session = excluded.session, seen = excluded.seen"
)
_GONE = "DELETE FROM headend_workers WHERE seen < ? AND owner <> ? RETURNING owner, session"


class Roster:
    """The workers of a work queue's database and when each was last seen; :meth:`open`
    creates the table if missing."""

    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue

    @classmethod
    async def open(cls, queue: JobQueue) -> Roster:
        """The table in ``queue``'s database, created once whichever process comes first."""
        await queue.create("headend_workers", _TABLE)
        return cls(queue)

    async def beat(self, owner: str, session: str, *, now: float) -> None:
        """``owner``, holding the MQTT session ``session``, is alive at ``now``."""
        async with self.queue.transaction("record a worker alive") as db:
            await db.execute(_BEAT, (owner, session, now))

    async def gone(self, *, before: float, keep: str) -> list[tuple[str, str]]:
        """The (owner, session) of the workers not seen since ``before`` (``keep`` aside),
        taken off the roster: each is handed to one caller only."""
        async with self.queue.transaction("take the silent workers") as db:
            return [(str(o), str(s)) for o, s in await db.fetch(_GONE, (before, keep))]
