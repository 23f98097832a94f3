"""`/api/v1/knowledge/…` for staff and `/api/v1/public/knowledge/…` for anyone (reads only)."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import views

staff = SimpleRouter()
staff.register("articles", views.ArticleViewSet, basename="kb-article")

public = SimpleRouter()
public.register("articles", views.PublicArticleViewSet, basename="kb-public-article")

urlpatterns = [
    path("knowledge/suggestions/", views.SuggestionView.as_view(), name="kb-suggestions"),
    path("knowledge/", include(staff.urls)),
    path("public/knowledge/", include(public.urls)),
]
