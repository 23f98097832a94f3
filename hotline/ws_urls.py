"""Websocket routes of every app, composed in one list for the ASGI router.

Apps add their `ws_urls.websocket_urlpatterns` here as they gain consumers (the realtime issue).
"""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
