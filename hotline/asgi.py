"""ASGI entry point for Daphne: HTTP through Django, websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hotline.settings.local")
django_asgi_app = get_asgi_application()

# Imported after Django is set up: websocket routes import models.
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from hotline.realtime.auth import TokenAuthMiddleware  # noqa: E402
from hotline.ws_urls import websocket_urlpatterns  # noqa: E402

# Origins are checked by the base consumer, not by Channels' validator: integrations connect with a token
# and no Origin header, which that validator refuses; browsers must come from ALLOWED_HOSTS.
websocket_application = AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))

application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": websocket_application})

# The WebSocket audio door runs in this process: load and warm the speech models now, not on the first call.
from django.conf import settings  # noqa: E402

if settings.SEARCH_SYNC_IN_PROCESS_SECONDS > 0:
    # One-machine sites: tickets become searchable without a separate `search_sync` service.
    from knowledge_base.search import background

    background.start(interval=settings.SEARCH_SYNC_IN_PROCESS_SECONDS)

if settings.SLA_SWEEP_IN_PROCESS_SECONDS > 0:
    # One-machine sites: deadlines are marked and escalated without a separate `run_sla_monitor` service.
    from ticketing import sla_background

    sla_background.start(interval=settings.SLA_SWEEP_IN_PROCESS_SECONDS)

if settings.ASR_WARM_AT_START:
    from telephony.speech import warm_in_background

    warm_in_background()
