"""Starting a set of supervised children in parallel, all or nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import trio


class Supervisor(Protocol):
    """``supervise(index, task_status=...)``: reports started once child ``index`` serves,
    then keeps it alive until cancelled."""

    def __call__(self, index: int, *, task_status: trio.TaskStatus[None]) -> Awaitable[None]: ...


async def start_all_then_supervise(
    count: int,
    supervise: Supervisor,
    on_ready: Callable[[], None],
    *,
    start_errors: tuple[type[BaseException], ...],
) -> None:
    """Start ``supervise(i)`` for every ``i < count`` in parallel; call ``on_ready`` once all
    have started, then run them until cancelled.

    If any start fails with one of ``start_errors``, the others are cancelled and the first
    such error is raised as itself -- out here, not from inside the nursery, so callers get
    the error rather than an exception group around it.
    """
    failures: list[BaseException] = []

    async def start_one(nursery: trio.Nursery, index: int) -> None:
        try:
            await nursery.start(supervise, index)
        except start_errors as e:
            failures.append(e)

    async with trio.open_nursery() as nursery:
        async with trio.open_nursery() as starting:
            for index in range(count):
                starting.start_soon(start_one, nursery, index)
        if failures:
            nursery.cancel_scope.cancel()
        else:
            on_ready()
    if failures:
        raise failures[0]
