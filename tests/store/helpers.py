"""Helpers of the store tests."""

from __future__ import annotations

from zse.store import Store


def count_transactions(store: Store) -> list[int]:
    """Count the transactions ``store`` begins from now on: ``[n]``, updated in place."""
    counted = [0]
    begin = store._engine.begin

    async def counting() -> None:
        counted[0] += 1
        await begin()

    store._engine.begin = counting  # type: ignore[method-assign]
    return counted
