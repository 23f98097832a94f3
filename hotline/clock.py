"""The one clock services read.

Deadlines and audit times come from `now()`. `frozen(at)` pins it for the demo seed (which backdates
tickets so every deadline state appears) and for tests; it is thread-local so concurrent requests never
see another thread's pinned time.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from django.utils import timezone

_local = threading.local()


def now() -> datetime:
    pinned = getattr(_local, "pinned", None)
    return pinned if pinned is not None else timezone.now()


@contextmanager
def frozen(at: datetime) -> Iterator[None]:
    if timezone.is_naive(at):
        raise ValueError("frozen() needs an aware datetime")
    previous = getattr(_local, "pinned", None)
    _local.pinned = at
    try:
        yield
    finally:
        _local.pinned = previous
