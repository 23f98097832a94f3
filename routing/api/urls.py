"""`/api/v1/routing/…`: dry runs, routing a ticket, its decisions and duplicates, proactive alerts."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("tickets", views.TicketRoutingViewSet, basename="routing-ticket")
router.register("alerts", views.AlertViewSet, basename="routing-alert")

urlpatterns = [
    path("routing/dry-run/", views.DryRunView.as_view(), name="routing-dry-run"),
    path("routing/", include(router.urls)),
]
