"""Shards: several operators split the Rollouts between them (``--shard i/n``).

A Rollout belongs to shard ``sha256("namespace/name") mod n``: stable across processes,
versions and restarts (Python's ``hash()`` is salted per process), so every Rollout has
exactly one owner among ``n`` operators. Each shard elects its own leader on its own
Lease (``<lease>-shard-<i>``); a shard that dies leaves only its Rollouts waiting. Only
one shard count acts at a time (:mod:`ramp.shell.runtime.layout`).
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def owns(self, namespace: str, name: str) -> bool:
        return shard_of(namespace, name, self.count) == self.index

    def lease_name(self, base: str) -> str:
        return f"{base}-shard-{self.index}"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(namespace: str, name: str, count: int) -> int:
    """The shard of a Rollout among ``count``.

    >>> [shard_of("ns", f"r{i}", 3) for i in range(6)]
    [1, 2, 0, 0, 0, 1]
    """
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def parse_shard(text: str) -> Shard | None:
    """``i/n`` with 0 <= i < n (``""``: no sharding; ``0/1`` is the same)."""
    if not text:
        return None
    try:
        index, count = (int(p) for p in text.split("/", 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected i/n (e.g. 0/3), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"expected 0 <= i < n, got {text!r}")
    return Shard(index, count) if count > 1 else None
