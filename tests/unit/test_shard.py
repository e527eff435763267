"""``--shard i/n``: a stable split of the Rollouts, its own Lease, and a queue that
ignores the other shards' Rollouts."""

from __future__ import annotations

import argparse
import asyncio

import pytest

from ramp.__main__ import parse_args
from ramp.shell.controller.controller import WorkQueue
from ramp.shell.runtime.shard import Shard, parse_shard, shard_of


def test_every_rollout_has_exactly_one_shard_and_the_split_is_even() -> None:
    keys = [(f"ns{i % 7}", f"r{i}") for i in range(3000)]
    shards = [Shard(i, 3) for i in range(3)]
    counts = [0, 0, 0]
    for ns, name in keys:
        owners = [s.index for s in shards if s.owns(ns, name)]
        assert len(owners) == 1
        counts[owners[0]] += 1
    assert all(900 < c < 1100 for c in counts), counts


def test_the_hash_is_stable_across_processes() -> None:
    # sha256 of "namespace/name": the same in every process and version (not hash()).
    assert [shard_of("ns", f"r{i}", 3) for i in range(6)] == [1, 2, 0, 0, 0, 1]


def test_parse_and_lease_name() -> None:
    assert parse_shard("") is None and parse_shard("0/1") is None
    assert parse_shard("2/3") == Shard(2, 3)
    assert Shard(2, 3).lease_name("ramp") == "ramp-shard-2"
    for bad in ("3/3", "-1/3", "x", "1/0"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_shard(bad)


def test_flag_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_args(["--shard", "1/4"]).shard == Shard(1, 4)
    monkeypatch.setenv("RAMP_SHARD", "0/2")
    assert parse_args([]).shard == Shard(0, 2)


def test_the_queue_ignores_other_shards() -> None:
    async def main() -> list[tuple[str, str]]:
        seen: list[tuple[str, str]] = []

        async def reconcile(ns: str, name: str) -> float | None:
            seen.append((ns, name))
            return None

        queue = WorkQueue(reconcile)
        shard = Shard(0, 3)
        queue.accept = lambda key: shard.owns(*key)
        for i in range(30):
            queue.kick(("ns", f"r{i}"))
        await asyncio.sleep(0.3)  # past the coalescing window
        await queue.stop()
        return seen

    seen = asyncio.run(main())
    assert seen and all(shard_of(ns, n, 3) == 0 for ns, n in seen)
    assert len(seen) == sum(shard_of("ns", f"r{i}", 3) == 0 for i in range(30))
