"""Admin: a read-only view of articles (with every version) and tags.

Articles are written, reviewed and withdrawn on the department pages and through the API, which call the
services; the admin writes nothing, so review, versions and the search index cannot be bypassed here.
"""

from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from .models import BODY_FIELDS, Article, ArticleVersion, Tag


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ArticleVersionInline(ReadOnlyMixin, admin.TabularInline):
    model = ArticleVersion
    extra = 0
    can_delete = False
    ordering = ["-number"]
    fields = ("number", "status", "change_note", "author", "reviewer", "review_note", "submitted_at", "decided_at")
    readonly_fields = fields


@admin.register(Article)
class ArticleAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "title",
        "kind",
        "status",
        "audience",
        "owner_department",
        "published_version",
        "use_count",
        "updated_at",
    ]
    list_filter = ["kind", "status", "audience", "owner_department", "source"]
    search_fields = ["title", "source_key"]
    list_select_related = ["owner_department"]
    date_hierarchy = "updated_at"
    inlines = [ArticleVersionInline]
    fieldsets = [
        (None, {"fields": ["title", "kind", "status", "audience", "owner_department", "category", "tags"]}),
        (
            "内容",
            {"fields": list(BODY_FIELDS)},
        ),
        (
            "发布与使用",
            {
                "fields": [
                    "valid_from",
                    "valid_until",
                    "published_version",
                    "published_at",
                    "use_count",
                    "source",
                    "source_key",
                    "created_by",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
    ]


@admin.register(Tag)
class TagAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["name", "article_count"]
    search_fields = ["name"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tag]:
        return super().get_queryset(request).annotate(article_count=Count("articles"))

    @admin.display(description="文章数", ordering="article_count")
    def article_count(self, tag: Tag) -> int:
        return int(getattr(tag, "article_count", 0))
