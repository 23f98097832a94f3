"""Websocket authentication: the session cookie (staff pages, through Channels' AuthMiddlewareStack) or,
for integrations, `Authorization: Token <key>` (DRF tokens). Which one was used is recorded in the scope,
because the origin rule differs (see `consumers.RealtimeConsumer`)."""

from typing import Any

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser


@database_sync_to_async
def _user_for_token(key: str) -> Any:
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return None
    return token.user


class TokenAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        header = dict(scope.get("headers", [])).get(b"authorization", b"").decode("latin1")
        if header:
            scheme, _, key = header.partition(" ")
            user = await _user_for_token(key.strip()) if scheme.lower() == "token" and key.strip() else None
            scope = {**scope, "user": user or AnonymousUser(), "auth_method": "token" if user else "invalid_token"}
        else:
            scope = {**scope, "auth_method": "session"}
        return await super().__call__(scope, receive, send)
