"""The base of every websocket: authentication and origin, subscription, catch-up, dedup, heartbeats.

A subclass says which groups a connection joins and which stored events it may catch up on (both
authorized through the owning app's selectors); everything else is here.

Close codes: 4400 bad request (a malformed `after`), 4401 not signed in (or a bad token, or a cookie
session without an Origin header), 4403 signed in but not allowed (or an Origin not in ALLOWED_HOSTS),
4404 no such subscription (unknown ticket, or a wrong number/query code: the same answer).
"""

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlparse

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.http.request import validate_host
from django.utils import timezone

from . import events as rt

logger = logging.getLogger(__name__)

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404

# Enough ids to recognise any duplicate that catch-up and live delivery can produce around a reconnect.
SEEN_IDS = 10_000


class Refused(Exception):
    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def check_origin_and_auth(scope: dict[str, Any], *, requires_user: bool, token_only: bool = False) -> None:
    """The one rule for every websocket of ours; raises Refused.

    An Origin, when sent, must be in ALLOWED_HOSTS. A cookie session without an Origin is refused (browsers
    always send one, so it is not a page of ours). `token_only` sockets (PBX integrations) refuse cookie
    sessions altogether.
    """
    origin = dict(scope.get("headers", [])).get(b"origin")
    method = scope.get("auth_method")
    if origin is not None:
        host = urlparse(origin.decode("latin1")).hostname or ""
        if not validate_host(host, settings.ALLOWED_HOSTS):
            raise Refused(CLOSE_FORBIDDEN, "来源不被允许。")
    elif method == "session" and requires_user:
        raise Refused(CLOSE_UNAUTHENTICATED, "请使用令牌认证。")
    if method == "invalid_token":
        raise Refused(CLOSE_UNAUTHENTICATED, "令牌无效。")
    if token_only and method != "token":
        raise Refused(CLOSE_UNAUTHENTICATED, "请使用令牌认证。")
    user = scope.get("user")
    if requires_user and not (user is not None and user.is_authenticated and user.is_active):
        raise Refused(CLOSE_UNAUTHENTICATED, "请先登录。")


class CatchUp:
    """Stored events a connection missed: `events` are payloads in id order; `truncated` when more exist
    than one catch-up sends (the screen should reload instead)."""

    def __init__(self, events: Sequence[rt.RealtimeEvent], last_event_id: int, truncated: bool):
        self.events = events
        self.last_event_id = last_event_id
        self.truncated = truncated


class RealtimeConsumer(AsyncJsonWebsocketConsumer):
    # Public pages have no account; every other consumer needs one.
    requires_user = True

    async def authorize(self) -> list[str]:
        """The groups to join; raise Refused to close with a code."""
        raise NotImplementedError

    async def catch_up(self, after: int | None) -> CatchUp:
        """What was stored after `after` for this subscription."""
        raise NotImplementedError

    # --- connection -------------------------------------------------------------------------------------

    async def connect(self) -> None:
        self.joined: list[str] = []
        self.seen: OrderedDict[int, None] = OrderedDict()
        self.heartbeat_task: asyncio.Task[None] | None = None
        # Accept first: a close code is only delivered on an accepted socket.
        await self.accept()
        try:
            self.check_origin_and_auth()
            after = self.after_parameter()
            groups = await self.authorize()
        except Refused as refused:
            logger.info("realtime: refused %s (%s): %s", self.scope.get("path"), refused.code, refused.reason)
            await self.send_json(rt.ErrorMessage(code=str(refused.code), detail=refused.reason).model_dump(mode="json"))
            await self.close(code=refused.code)
            return
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.joined = groups
        # Live events that arrive while catching up wait in this channel's queue and are handled after
        # connect() returns; the seen-ids set drops the ones catch-up already delivered.
        result = await self.catch_up(after)
        for event in result.events:
            await self.deliver(event.model_dump(mode="json"))
        done = rt.CatchupComplete(
            last_event_id=result.last_event_id, count=len(result.events), truncated=result.truncated
        )
        await self.send_json(done.model_dump(mode="json"))
        self.heartbeat_task = asyncio.create_task(self.heartbeat())

    async def disconnect(self, code: int) -> None:
        task = getattr(self, "heartbeat_task", None)
        if task is not None:
            task.cancel()
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    def check_origin_and_auth(self) -> None:
        check_origin_and_auth(self.scope, requires_user=self.requires_user)

    def query(self, name: str) -> str | None:
        values = parse_qs(self.scope.get("query_string", b"").decode("latin1")).get(name)
        return values[0] if values else None

    def after_parameter(self) -> int | None:
        raw = self.query("after")
        if raw is None or raw == "":
            return None
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
            raise Refused(CLOSE_BAD_REQUEST, "after 必须是非负整数。")
        return int(raw)

    # --- delivery ---------------------------------------------------------------------------------------

    async def deliver(self, payload: dict[str, Any]) -> None:
        event_id = payload.get("event_id")
        if event_id is not None:
            if event_id in self.seen:
                return
            self.seen[event_id] = None
            if len(self.seen) > SEEN_IDS:
                self.seen.popitem(last=False)
        await self.send_json(payload)

    async def realtime_event(self, message: dict[str, Any]) -> None:
        """Handler for every group message (`broadcast.MESSAGE_TYPE`)."""
        await self.deliver(message["event"])

    async def heartbeat(self) -> None:
        interval = settings.HOTLINE_WS_HEARTBEAT_SECONDS
        while True:
            await asyncio.sleep(interval)
            await self.send_json(rt.Heartbeat(at=timezone.now()).model_dump(mode="json"))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = json.loads(text_data or "")
        except ValueError:
            message = None
        if isinstance(message, dict) and message.get("type") == "ping":
            await self.send_json(rt.Pong().model_dump(mode="json"))
            return
        error = rt.ErrorMessage(code="unknown_message", detail='只支持 {"type": "ping"}。')
        await self.send_json(error.model_dump(mode="json"))
