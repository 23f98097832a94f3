"""`/open311/v2/`: the GeoReport v2 paths with their format suffix (ticketing/api/open311_views.py)."""

from django.urls import re_path

from . import open311_views as views

SUFFIX = r"\.(?P<format>[A-Za-z0-9]+)$"

urlpatterns = [
    re_path(r"^services" + SUFFIX, views.ServiceListView.as_view(), name="open311-services"),
    re_path(
        r"^services/(?P<service_code>[^/]+)" + SUFFIX, views.ServiceDefinitionView.as_view(), name="open311-service"
    ),
    re_path(r"^requests" + SUFFIX, views.RequestListView.as_view(), name="open311-requests"),
    re_path(r"^requests/(?P<service_request_id>[^/]+)" + SUFFIX, views.RequestView.as_view(), name="open311-request"),
    re_path(r"^tokens/(?P<token>[^/]+)" + SUFFIX, views.TokenView.as_view(), name="open311-token"),
    re_path(r"^.*$", views.UnknownPathView.as_view(), name="open311-unknown"),
]
