"""Pages: `/kb/` (citizens: FAQ and service-guide search, article pages) and `/kb/staff/…` (departments)."""

from django.urls import path

from . import views

app_name = "kb"

urlpatterns = [
    path("", views.public_search, name="public-search"),
    path("articles/<int:pk>/", views.public_article, name="public-article"),
    path("staff/", views.staff_list, name="staff-list"),
    path("staff/review/", views.review_queue, name="review-queue"),
    path("staff/new/<str:kind>/", views.article_new, name="article-new"),
    path("staff/<int:pk>/", views.staff_article, name="staff-article"),
    path("staff/<int:pk>/edit/", views.article_edit, name="article-edit"),
    path("staff/<int:pk>/submit/", views.article_submit, name="article-submit"),
    path("staff/<int:pk>/approve/", views.article_approve, name="article-approve"),
    path("staff/<int:pk>/reject/", views.article_reject, name="article-reject"),
    path("staff/<int:pk>/withdraw/", views.article_withdraw, name="article-withdraw"),
    path("staff/<int:pk>/versions/", views.article_versions, name="article-versions"),
]
