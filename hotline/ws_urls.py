"""Websocket routes of every app, composed in one list for the ASGI router."""

from django.urls import URLPattern

from telephony.ws_urls import websocket_urlpatterns as telephony_routes
from ticketing.ws_urls import websocket_urlpatterns as ticketing_routes

websocket_urlpatterns: list[URLPattern] = [*ticketing_routes, *telephony_routes]
