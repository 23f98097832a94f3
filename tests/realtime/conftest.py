"""Websocket tests drive the real ASGI stack (auth middleware, routing, consumers) in process.

They are transactional: consumers read the database from other threads, so data must be committed.
"""

import copy
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from rest_framework.authtoken.models import Token

from hotline.asgi import websocket_application


class Client:
    """A websocket client authenticated by token, collecting what it receives."""

    def __init__(self, communicator: WebsocketCommunicator):
        self.communicator = communicator

    async def receive(self, timeout: float = 2) -> dict[str, Any]:
        return await self.communicator.receive_json_from(timeout=timeout)

    async def until_caught_up(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Messages before catchup.complete, and that message."""
        received = []
        while True:
            message = await self.receive()
            if message["type"] == "catchup.complete":
                return received, message
            received.append(message)

    async def nothing_more(self) -> bool:
        return await self.communicator.receive_nothing(timeout=0.3)

    async def close_code(self) -> int:
        """Skip the error message and return the close code."""
        while True:
            output = await self.communicator.receive_output(timeout=2)
            if output["type"] == "websocket.close":
                return output.get("code")

    async def disconnect(self) -> None:
        await self.communicator.disconnect()


@pytest.fixture(autouse=True)
def own_redis_prefix(settings):  # type: ignore[no-untyped-def]
    """Other test runs may share the Redis server: their events to `supervisors` or `ticket.1` must not reach
    these sockets, which assert on everything they receive."""
    layer = copy.deepcopy(settings.CHANNEL_LAYERS["default"])
    if "redis" in layer["BACKEND"]:
        layer["CONFIG"]["prefix"] = f"test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        settings.CHANNEL_LAYERS = {"default": layer}


@pytest.fixture
async def connect(transactional_db) -> AsyncIterator[Any]:  # type: ignore[no-untyped-def]
    opened: list[WebsocketCommunicator] = []

    async def open_socket(path: str, *, user: Any = None, headers: list[tuple[bytes, bytes]] | None = None) -> Client:
        all_headers = list(headers or [])
        if user is not None:
            token, _ = await sync_to_async(Token.objects.get_or_create)(user=user)
            all_headers.append((b"authorization", f"Token {token.key}".encode()))
        communicator = WebsocketCommunicator(websocket_application, path, headers=all_headers)
        connected, _ = await communicator.connect(timeout=3)
        assert connected
        opened.append(communicator)
        return Client(communicator)

    yield open_socket
    for communicator in opened:
        # No consumer may outlive the test database; a socket stopped by a receive timeout is already done.
        if not communicator.future.done():
            await communicator.disconnect()


@pytest.fixture(autouse=True)
async def close_thread_connections() -> AsyncIterator[None]:
    yield
    # sync_to_async ran the ORM on worker threads; their connections must not outlive the test database.
    await sync_to_async(connections.close_all)()
