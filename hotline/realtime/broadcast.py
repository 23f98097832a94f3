"""The only code that talks to the channel layer.

Services build an event before commit and hand it here; it is sent after the transaction commits, so a
screen never shows a change that was rolled back. A failing channel layer (Redis down) never breaks the
write: the event is already stored as a ticket event, and screens catch up from there when they reconnect.
"""

import asyncio
import logging
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings
from django.db import transaction
from pydantic import BaseModel

logger = logging.getLogger(__name__)

# Consumers receive every event through this handler name (`realtime_event` method).
MESSAGE_TYPE = "realtime.event"


def reaches_other_processes() -> bool:
    """Whether events sent here reach screens served by another process (Redis), or only this one (the
    in-memory layer of the embedded defaults): a door running as its own command needs the former."""
    backend = str(settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", ""))
    return bool(backend) and "InMemory" not in backend


PROCESS_LOCAL_WARNING = (
    "warning: the channel layer is in-memory (REDIS_URL is not set), so call and transcript events from this "
    "process reach no screen served by the web process; set REDIS_URL to run the doors as their own processes"
)


async def _send_to_groups(layer: BaseChannelLayer, event: BaseModel, groups: list[str]) -> None:
    message = {"type": MESSAGE_TYPE, "event": event.model_dump(mode="json")}
    # Bounded, so an unreachable Redis delays the response by seconds at most, never hangs it.
    timeout = settings.HOTLINE_BROADCAST_TIMEOUT_SECONDS
    for group in groups:
        try:
            await asyncio.wait_for(layer.group_send(group, message), timeout=timeout)
        except Exception:
            # Logged without the payload: it may carry personal data.
            logger.exception(
                "realtime: could not send %s to group %s; clients will catch up from stored events",
                type(event).__name__,
                group,
            )


def send_now(event: BaseModel, groups: Iterable[str]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    # One trip into the event loop per event, not per group.
    async_to_sync(_send_to_groups)(layer, event, list(dict.fromkeys(groups)))


def broadcast_on_commit(event: BaseModel, *groups: str, using: str | None = None) -> None:
    group_list = list(groups)
    transaction.on_commit(lambda: send_now(event, group_list), using=using)
