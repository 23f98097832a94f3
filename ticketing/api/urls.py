from django.urls import path
from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("tickets", views.TicketViewSet, basename="ticket")
router.register("categories", views.CategoryViewSet, basename="category")
router.register("departments", views.DepartmentViewSet, basename="department")
router.register("regions", views.RegionViewSet, basename="region")

urlpatterns = [
    path("me/", views.MeView.as_view(), name="me"),
    *router.urls,
]
