"""The one table style of the terminal views (``get``, ``plan``, blue-green sections)."""

from __future__ import annotations

from rich import box
from rich.table import Table


def make_table(*columns: str) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, expand=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table
