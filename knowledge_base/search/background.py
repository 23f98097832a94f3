"""Keeping the search index current from inside the web process, for the embedded set-up (`make run`).

Production runs `manage.py search_sync --loop 5` as its own service; a single-machine site would otherwise
have tickets that never become searchable (similar tickets, duplicates, routing all read them). With
`SEARCH_SYNC_IN_PROCESS_SECONDS` above zero the web process starts one daemon thread that runs `sync()` on
that interval. An unreachable index is logged and tried again next round; it never stops the thread.
"""

import logging
import threading

from django.db import close_old_connections

from .indexing import sync
from .types import SearchUnavailable

logger = logging.getLogger(__name__)


def sync_forever(*, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        close_old_connections()
        try:
            report = sync()
        except SearchUnavailable as exc:
            logger.warning("search: index unavailable, will retry: %s", exc)
        except Exception:
            logger.exception("search: background sync failed; will retry")
        else:
            if report.indexed or report.failed:
                logger.info("search: background sync indexed %s, failed %s", report.indexed, report.failed)
        finally:
            close_old_connections()


def start(*, interval: float) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(
        target=sync_forever, kwargs={"interval": interval, "stop": stop}, name="search-sync", daemon=True
    )
    thread.start()
    return thread, stop
