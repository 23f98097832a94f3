"""The knowledge base (知识库): articles owned by the departments that answer for them, with a review flow and
every version kept.

An article's live content is on `Article`; every change is an `ArticleVersion` that goes through review
(draft -> in review -> approved or rejected). Approving a version copies its content onto the article and
publishes it, so the published answer stays live while its next version is being written and reviewed.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from ticketing.models import Category, Department, Ticket


class ArticleKind(models.TextChoices):
    GUIDE = "guide", _("办事指南")
    FAQ = "faq", _("常见问题")
    POLICY = "policy", _("政策文件")
    NOTICE = "notice", _("通知公告")


class ArticleStatus(models.TextChoices):
    DRAFT = "draft", _("未发布")
    PUBLISHED = "published", _("已发布")
    EXPIRED = "expired", _("已过期")
    WITHDRAWN = "withdrawn", _("已撤回")


class Audience(models.TextChoices):
    PUBLIC = "public", _("公开")
    INTERNAL = "internal", _("仅内部")


class VersionStatus(models.TextChoices):
    DRAFT = "draft", _("草稿")
    IN_REVIEW = "in_review", _("审核中")
    APPROVED = "approved", _("已通过")
    REJECTED = "rejected", _("已退回")


# The content of an article, as kept on the article (live) and on each version (JSON). A guide uses the
# structured fields; an FAQ uses question and answer; a policy or notice uses answer as its body.
BODY_FIELDS = (
    "question",
    "answer",
    "conditions",
    "materials",
    "steps",
    "fees",
    "time_limit",
    "legal_basis",
    "service_location",
    "document_number",
)
CONTENT_FIELDS = ("title", *BODY_FIELDS)


class Tag(models.Model):
    name = models.CharField(_("标签"), max_length=32, unique=True)

    class Meta:
        verbose_name = _("标签")
        verbose_name_plural = _("标签")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Article(models.Model):
    kind = models.CharField(_("类型"), max_length=16, choices=ArticleKind.choices)
    status = models.CharField(_("状态"), max_length=16, choices=ArticleStatus.choices, default=ArticleStatus.DRAFT)
    audience = models.CharField(_("公开范围"), max_length=16, choices=Audience.choices, default=Audience.INTERNAL)
    owner_department = models.ForeignKey(
        Department, verbose_name=_("维护单位"), on_delete=models.PROTECT, related_name="articles"
    )
    category = models.ForeignKey(
        Category, verbose_name=_("诉求分类"), null=True, blank=True, on_delete=models.PROTECT, related_name="articles"
    )
    tags = models.ManyToManyField(Tag, verbose_name=_("标签"), blank=True, related_name="articles")

    title = models.CharField(_("标题"), max_length=200)
    question = models.TextField(_("问题"), blank=True)
    answer = models.TextField(_("答复/正文"), blank=True)
    conditions = models.TextField(_("办理条件"), blank=True)
    materials = models.TextField(_("所需材料"), blank=True)
    steps = models.TextField(_("办理流程"), blank=True)
    fees = models.CharField(_("收费标准"), max_length=200, blank=True)
    time_limit = models.CharField(_("办理时限"), max_length=100, blank=True)
    legal_basis = models.TextField(_("设定依据"), blank=True)
    service_location = models.TextField(_("办理地点与方式"), blank=True)
    document_number = models.CharField(_("文号"), max_length=100, blank=True)

    valid_from = models.DateField(_("生效日期"), null=True, blank=True)
    valid_until = models.DateField(_("有效期至"), null=True, blank=True)
    published_version = models.PositiveIntegerField(_("发布版本"), null=True, blank=True)
    published_at = models.DateTimeField(_("发布时间"), null=True, blank=True)
    use_count = models.PositiveIntegerField(_("采用次数"), default=0)

    # Where an imported article came from (e.g. "replies.jsonl" and the row id), so importing twice updates.
    source = models.CharField(_("来源"), max_length=64, blank=True)
    source_key = models.CharField(_("来源编号"), max_length=64, blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("创建人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("创建时间"))
    updated_at = models.DateTimeField(_("更新时间"))

    class Meta:
        verbose_name = _("知识库文章")
        verbose_name_plural = _("知识库文章")
        ordering = ["-updated_at", "-id"]
        indexes = [models.Index(fields=["status", "audience", "kind"])]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "source_key"], condition=~Q(source=""), name="article_unique_source_key"
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True)
                | Q(valid_from__isnull=True)
                | Q(valid_until__gte=models.F("valid_from")),
                name="article_valid_until_after_from",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class ArticleVersion(models.Model):
    """One version of an article's content, with its review. At most one open (draft or in review) per article."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(_("版本号"))
    status = models.CharField(_("审核状态"), max_length=16, choices=VersionStatus.choices, default=VersionStatus.DRAFT)
    content = models.JSONField(_("内容"))
    change_note = models.CharField(_("修改说明"), max_length=300, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("编写人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("审核人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    review_note = models.CharField(_("审核意见"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("创建时间"))
    submitted_at = models.DateTimeField(_("提交审核时间"), null=True, blank=True)
    decided_at = models.DateTimeField(_("审核时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("文章版本")
        verbose_name_plural = _("文章版本")
        ordering = ["article_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["article", "number"], name="article_version_unique_number"),
            models.UniqueConstraint(
                fields=["article"],
                condition=Q(status__in=["draft", "in_review"]),
                name="article_one_open_version",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.article_id} v{self.number}"


class ArticleUse(models.Model):
    """An article answered a call or a ticket: what the agent picked for an instant reply, or cited."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="uses")
    version = models.PositiveIntegerField(_("版本号"), null=True, blank=True)
    ticket = models.ForeignKey(
        Ticket, verbose_name=_("工单"), null=True, blank=True, on_delete=models.SET_NULL, related_name="article_uses"
    )
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("使用人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    used_at = models.DateTimeField(_("使用时间"))

    class Meta:
        verbose_name = _("文章使用记录")
        verbose_name_plural = _("文章使用记录")
        ordering = ["-used_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["article", "ticket"], condition=Q(ticket__isnull=False), name="article_use_once_per_ticket"
            )
        ]

    def __str__(self) -> str:
        return f"{self.article_id}->{self.ticket_id}"


from .search.models import SearchCursor, SearchEntry, SearchIndexBuild, SearchOutbox  # noqa: E402, F401
