"""Input serializers check shape and types; the services check the rules. Output serializers never write.

Search results carry `score` and `snippet`: the snippet is HTML in which the text is already escaped and
only the matched words are wrapped in `<mark>`, so a page may insert it as HTML.
"""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from hotline.api.serializers import StrictSerializer
from ticketing.models import Category, Department

from ..diff import changed_fields
from ..models import CONTENT_FIELDS, Article, ArticleKind, ArticleStatus, ArticleUse, ArticleVersion, Audience
from ..services import ArticleContent

TEXT_MAX = 20000
MAX_TAGS = 20
QUERY_MAX = 200

# --- input -----------------------------------------------------------------------------------------------


def _text(max_length: int = TEXT_MAX) -> serializers.CharField:
    return serializers.CharField(max_length=max_length, required=False, allow_blank=True)


class _ContentInput(StrictSerializer):
    """The content of a version. Length limits of single fields are the service's (it answers per field)."""

    title = serializers.CharField(max_length=1000, required=False)
    question = _text()
    answer = _text()
    conditions = _text()
    materials = _text()
    steps = _text()
    fees = _text(1000)
    time_limit = _text(1000)
    legal_basis = _text()
    service_location = _text()
    document_number = _text(1000)
    audience = serializers.ChoiceField(choices=Audience.choices, required=False)
    category = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=32), required=False, max_length=MAX_TAGS, help_text="标签名称"
    )
    valid_from = serializers.DateField(required=False, allow_null=True)
    valid_until = serializers.DateField(required=False, allow_null=True)
    change_note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")

    def content(self, base: ArticleContent | None = None) -> ArticleContent:
        """The validated fields over `base` (the latest version): a field left out keeps its value."""
        data = dict(self.validated_data)
        start: dict[str, Any] = dict(base.__dict__) if base is not None else {}
        for name in CONTENT_FIELDS:
            if name in data:
                start[name] = data[name]
        for name in ("audience", "tags", "valid_from", "valid_until"):
            if name in data:
                start[name] = tuple(data[name]) if name == "tags" else data[name]
        if "category" in data:
            start["category_id"] = data["category"]
        return ArticleContent(**start)


class ArticleCreateInput(_ContentInput):
    kind = serializers.ChoiceField(choices=ArticleKind.choices)
    owner_department = serializers.IntegerField(min_value=1)
    title = serializers.CharField(max_length=1000)


class ArticleReviseInput(_ContentInput):
    """Only the fields to change; the rest are taken from the latest version."""


class EmptyInput(StrictSerializer):
    pass


class ApproveInput(StrictSerializer):
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class RejectInput(StrictSerializer):
    note = serializers.CharField(max_length=500)


class WithdrawInput(StrictSerializer):
    reason = serializers.CharField(max_length=500)


class UseInput(StrictSerializer):
    ticket = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None, help_text="用这篇文章答复的工单（通话中可为空）"
    )


class _ListQuery(StrictSerializer):
    q = serializers.CharField(max_length=QUERY_MAX, required=False, help_text="检索词：按相关度排序并高亮")
    kind = serializers.ChoiceField(choices=ArticleKind.choices, required=False)
    category = serializers.IntegerField(min_value=1, required=False, help_text="诉求分类（一级分类含其二级分类）")
    department = serializers.IntegerField(min_value=1, required=False, help_text="维护单位")
    tag = serializers.CharField(max_length=32, required=False)
    page = serializers.IntegerField(min_value=1, required=False)
    page_size = serializers.IntegerField(min_value=1, max_value=200, required=False)
    format = serializers.CharField(max_length=10, required=False)


class ArticleListQuery(_ListQuery):
    status = serializers.ChoiceField(choices=ArticleStatus.choices, required=False)
    audience = serializers.ChoiceField(choices=Audience.choices, required=False)


class PublicArticleListQuery(_ListQuery):
    pass


# --- output ----------------------------------------------------------------------------------------------


class ArticleDepartmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Department
        fields = ["id", "code", "name"]


class ArticleCategorySerializer(serializers.ModelSerializer):
    parent = serializers.CharField(source="parent.name", default=None, read_only=True)  # type: ignore[assignment]

    class Meta:
        model = Category
        fields = ["id", "name", "parent"]


class _HitFields(serializers.ModelSerializer):
    """`score` and `snippet` when the list answers a search (`?q=`), else null."""

    score = serializers.SerializerMethodField()
    snippet = serializers.SerializerMethodField()

    def _hit(self, article: Article) -> Any:
        hits = self.context.get("hits") or {}
        return hits.get(article.id)

    @extend_schema_field(OpenApiTypes.FLOAT)
    def get_score(self, article: Article) -> float | None:
        hit = self._hit(article)
        return None if hit is None else round(float(hit.score), 4)

    @extend_schema_field(OpenApiTypes.STR)
    def get_snippet(self, article: Article) -> str | None:
        hit = self._hit(article)
        return None if hit is None else str(hit.snippet)


LIST_FIELDS = [
    "id",
    "kind",
    "kind_display",
    "title",
    "owner_department",
    "category",
    "tags",
    "valid_from",
    "valid_until",
    "published_at",
    "score",
    "snippet",
]
BODY_FIELDS = list(CONTENT_FIELDS[1:])


class PublicArticleListSerializer(_HitFields):
    kind_display = serializers.CharField(source="get_kind_display", read_only=True)
    owner_department = ArticleDepartmentSerializer(read_only=True)
    category = ArticleCategorySerializer(read_only=True)
    tags = serializers.SerializerMethodField()

    class Meta:
        model = Article
        fields = LIST_FIELDS

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_tags(self, article: Article) -> list[str]:
        return [tag.name for tag in article.tags.all()]


class PublicArticleDetailSerializer(PublicArticleListSerializer):
    class Meta(PublicArticleListSerializer.Meta):
        fields = [*[name for name in LIST_FIELDS if name not in ("score", "snippet")], *BODY_FIELDS, "updated_at"]


class ArticleListSerializer(PublicArticleListSerializer):
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    audience_display = serializers.CharField(source="get_audience_display", read_only=True)

    class Meta(PublicArticleListSerializer.Meta):
        fields = [
            *LIST_FIELDS[:3],
            "status",
            "status_display",
            "audience",
            "audience_display",
            *LIST_FIELDS[3:-2],
            "published_version",
            "use_count",
            "updated_at",
            *LIST_FIELDS[-2:],
        ]


class VersionBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = ArticleVersion
        fields = ["number", "status", "change_note", "submitted_at"]


class ArticleDetailSerializer(ArticleListSerializer):
    open_version = serializers.SerializerMethodField()

    class Meta(ArticleListSerializer.Meta):
        fields = [
            *[name for name in ArticleListSerializer.Meta.fields if name not in ("score", "snippet")],
            *BODY_FIELDS,
            "source",
            "source_key",
            "created_at",
            "open_version",
        ]

    @extend_schema_field(VersionBriefSerializer(allow_null=True))
    def get_open_version(self, article: Article) -> dict[str, Any] | None:
        """The draft or version in review, for those who maintain the article."""
        version = self.context.get("open_version")
        return None if version is None else dict(VersionBriefSerializer(version).data)


class PersonSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(source="__str__")


class VersionSerializer(serializers.ModelSerializer):
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    author = PersonSerializer(read_only=True, allow_null=True)
    reviewer = PersonSerializer(read_only=True, allow_null=True)

    class Meta:
        model = ArticleVersion
        fields = [
            "number",
            "status",
            "status_display",
            "content",
            "change_note",
            "author",
            "reviewer",
            "review_note",
            "created_at",
            "submitted_at",
            "decided_at",
        ]


class VersionHistorySerializer(VersionSerializer):
    changed_fields = serializers.SerializerMethodField()

    class Meta(VersionSerializer.Meta):
        fields = [*VersionSerializer.Meta.fields, "changed_fields"]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_changed_fields(self, version: ArticleVersion) -> list[str]:
        """Fields that differ from the version before it (all filled ones for the first)."""
        previous = (self.context.get("previous") or {}).get(version.number)
        return changed_fields(previous.content if previous is not None else None, version.content)


class UseSerializer(serializers.ModelSerializer):
    use_count = serializers.SerializerMethodField()

    class Meta:
        model = ArticleUse
        fields = ["id", "article", "version", "ticket", "used_at", "use_count"]

    @extend_schema_field(OpenApiTypes.INT)
    def get_use_count(self, use: ArticleUse) -> int:
        """How often the article has answered a ticket or a call, this use included."""
        return int(self.context["use_count"])


class SuggestionInput(StrictSerializer):
    """A ticket (its title and content) or a text to find answers for; exactly one of the two."""

    ticket = serializers.IntegerField(required=False, min_value=1)
    text = serializers.CharField(required=False, max_length=4000, trim_whitespace=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if bool(attrs.get("ticket")) == bool(attrs.get("text")):
            raise serializers.ValidationError({"ticket": ["请给出工单或文字之一。"]})
        return attrs


class SuggestionSerializer(serializers.Serializer):
    article_id = serializers.IntegerField()
    title = serializers.CharField()
    kind = serializers.CharField()
    score = serializers.FloatField()
    snippet = serializers.CharField()
