"""Changes to ``os.environ`` that last for one block, then are undone."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator, Mapping, Optional


@contextmanager
def scoped_environ(changes: Mapping[str, Optional[str]]) -> Iterator[None]:
    """Set (a string) or remove (``None``) environment variables for the ``with`` block."""
    saved = {name: os.environ.get(name) for name in changes}
    try:
        _apply(changes)
        yield
    finally:
        _apply(saved)


def _apply(values: Mapping[str, Optional[str]]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
