"""Routing rules that administrators keep, the decisions taken on tickets, proactive alerts, and the cursor
that follows ticket events.

Fields, constraints and indexes only; writes go through `services`, evaluation lives in `rules`.
"""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from ticketing.models import Category, Department, Region, Ticket, Urgency, User


class KeywordMode(models.TextChoices):
    ANY = "any", _("任一关键词")
    ALL = "all", _("全部关键词")


class EmergencyTarget(models.TextChoices):
    """The external targets of ticketing's ExternalTarget that are emergencies (国办函〔2025〕66号)."""

    POLICE_110 = "110", _("110 报警")
    FIRE_119 = "119", _("119 火警")
    AMBULANCE_120 = "120", _("120 急救")
    TRAFFIC_122 = "122", _("122 交通事故")


class LegalRoute(models.TextChoices):
    """Matters with a legal route of their own; same values as ticketing's ExternalTarget."""

    LITIGATION = "litigation", _("诉讼途径")
    ARBITRATION = "arbitration", _("仲裁途径")
    PETITION = "petition", _("信访途径")
    DISCLOSURE = "disclosure", _("政府信息公开申请")


WEEKDAY_CHOICES = [(1, "周一"), (2, "周二"), (3, "周三"), (4, "周四"), (5, "周五"), (6, "周六"), (7, "周日")]

# Long patterns are refused: a rule is evaluated on every call in progress and must stay cheap.
PATTERN_MAX_LENGTH = 200


class Rule(models.Model):
    """A routing rule. Every condition that is set must hold (empty ones are not checked); at least one
    condition and one action are required. Rules are evaluated by `order`, then id."""

    name = models.CharField(_("名称"), max_length=100, unique=True)
    description = models.CharField(_("说明"), max_length=300, blank=True)
    order = models.PositiveIntegerField(_("顺序"), default=100, help_text=_("数字小的先评估。"))
    enabled = models.BooleanField(_("启用"), default=True)

    # conditions
    appeal_types = models.JSONField(_("诉求类型"), default=list, blank=True)
    categories = models.ManyToManyField(
        Category,
        verbose_name=_("诉求分类"),
        blank=True,
        related_name="+",
        help_text=_("选一级分类即包含其下全部二级分类。"),
    )
    keywords = models.TextField(
        _("关键词"), blank=True, help_text=_("每行一个，或用逗号、顿号分隔；在标题和内容中查找。")
    )
    keyword_mode = models.CharField(_("关键词匹配"), max_length=8, choices=KeywordMode.choices, default=KeywordMode.ANY)
    patterns = models.TextField(
        _("正则表达式"), blank=True, help_text=_("每行一个 Python 正则表达式，任一命中即满足；在标题和内容中查找。")
    )
    regions = models.ManyToManyField(
        Region, verbose_name=_("区域"), blank=True, related_name="+", help_text=_("包含所选区域的全部下级区域。")
    )
    channels = models.JSONField(_("来源渠道"), default=list, blank=True)
    hotline_lines = models.JSONField(_("热线号码"), default=list, blank=True)
    time_from = models.TimeField(
        _("时段开始"), null=True, blank=True, help_text=_("北京时间；可跨零点，如 22:00–06:00。")
    )
    time_to = models.TimeField(_("时段结束"), null=True, blank=True)
    weekdays = models.JSONField(_("星期"), default=list, blank=True)

    # actions
    lead_department = models.ForeignKey(
        Department,
        verbose_name=_("主办单位"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    assisting_departments = models.ManyToManyField(Department, verbose_name=_("协办单位"), blank=True, related_name="+")
    urgency = models.CharField(_("设为紧急程度"), max_length=16, choices=Urgency.choices, blank=True)
    emergency_target = models.CharField(
        _("紧急转接"),
        max_length=8,
        choices=EmergencyTarget.choices,
        blank=True,
        help_text=_("立即转接 110/119/120/122。"),
    )
    legal_route = models.CharField(_("依法分流途径"), max_length=16, choices=LegalRoute.choices, blank=True)
    script = models.TextField(_("告知来电人的话术"), blank=True)

    hit_count = models.PositiveIntegerField(_("命中次数"), default=0, editable=False)
    last_hit_at = models.DateTimeField(_("最近命中"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("修改时间"), auto_now=True)

    class Meta:
        verbose_name = _("派单规则")
        verbose_name_plural = _("派单规则")
        ordering = ["order", "id"]
        indexes = [models.Index(fields=["enabled", "order", "id"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(emergency_target="") | Q(legal_route=""), name="rule_emergency_or_legal_route"
            ),
            models.CheckConstraint(
                condition=Q(time_from__isnull=True, time_to__isnull=True)
                | Q(time_from__isnull=False, time_to__isnull=False),
                name="rule_time_window_complete",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from .rules import pattern_errors

        errors: dict[str, list[str]] = {}
        problems = pattern_errors(self.patterns)
        if problems:
            errors["patterns"] = problems
        if (self.time_from is None) != (self.time_to is None):
            errors["time_to"] = ["时段须同时填写开始和结束。"]
        elif self.time_from is not None and self.time_from == self.time_to:
            errors["time_to"] = ["时段开始与结束不能相同。"]
        if self.emergency_target and self.legal_route:
            errors["legal_route"] = ["紧急转接与依法分流只能选其一。"]
        if self.legal_route and not self.script.strip():
            errors["script"] = ["依法分流须填写告知来电人的话术。"]
        if errors:
            raise ValidationError(errors)


class Outcome(models.TextChoices):
    AUTO_DISPATCHED = "auto_dispatched", _("自动派单")
    PRESELECTED = "preselected", _("预选待确认")
    MANUAL = "manual", _("人工派单")
    EMERGENCY = "emergency", _("紧急转接")
    LEGAL_ROUTE = "legal_route", _("依法分流")


class RoutingDecision(models.Model):
    """What routing decided for a ticket waiting for dispatch, and why. Append-only: each routing run of a
    ticket (after intake, after a return, or asked for by a dispatcher) adds one."""

    ticket = models.ForeignKey(
        Ticket, verbose_name=_("工单"), on_delete=models.CASCADE, related_name="routing_decisions"
    )
    outcome = models.CharField(_("结果"), max_length=20, choices=Outcome.choices)
    mode = models.CharField(_("置信推荐处理方式"), max_length=16)
    lead_department = models.ForeignKey(
        Department, verbose_name=_("主办单位"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assisting_department_ids = models.JSONField(_("协办单位"), default=list, blank=True)
    confidence = models.FloatField(_("置信度"), null=True, blank=True)
    rule = models.ForeignKey(
        Rule, verbose_name=_("命中规则"), null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions"
    )
    rule_name = models.CharField(_("规则名称"), max_length=100, blank=True)
    matches = models.JSONField(_("命中规则及原因"), default=list, blank=True)
    recommendations = models.JSONField(_("推荐及理由"), default=list, blank=True)
    urgency = models.CharField(_("设定紧急程度"), max_length=16, blank=True)
    external_target = models.CharField(_("转外部去向"), max_length=16, blank=True)
    script = models.TextField(_("话术"), blank=True)
    note = models.CharField(_("说明"), max_length=500, blank=True)
    actor = models.ForeignKey(
        User, verbose_name=_("执行人"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(_("决定时间"))
    latency_ms = models.PositiveIntegerField(_("耗时（毫秒）"), default=0)

    class Meta:
        verbose_name = _("派单决定")
        verbose_name_plural = _("派单决定")
        ordering = ["-decided_at", "-id"]
        indexes = [models.Index(fields=["ticket", "-decided_at"]), models.Index(fields=["outcome", "-decided_at"])]

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.outcome}"


class ProactiveAlert(models.Model):
    """未诉先办: several tickets about one place and category within a few days. One open (unacknowledged)
    alert per place and category; tickets arriving while it is open are added to it."""

    region = models.ForeignKey(Region, verbose_name=_("区域"), on_delete=models.PROTECT, related_name="+")
    category = models.ForeignKey(Category, verbose_name=_("诉求分类"), on_delete=models.PROTECT, related_name="+")
    ticket_ids = models.JSONField(_("工单"), default=list)
    window_days = models.PositiveSmallIntegerField(_("统计天数"))
    threshold = models.PositiveSmallIntegerField(_("触发件数"))
    window_start = models.DateTimeField(_("统计起点"))
    raised_at = models.DateTimeField(_("发出时间"))
    acknowledged_by = models.ForeignKey(
        User, verbose_name=_("确认人"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(_("确认时间"), null=True, blank=True)
    note = models.CharField(_("处理说明"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("未诉先办预警")
        verbose_name_plural = _("未诉先办预警")
        ordering = ["-raised_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["region", "category"],
                condition=Q(acknowledged_at__isnull=True),
                name="proactive_alert_one_open_per_place",
            ),
        ]
        indexes = [models.Index(fields=["acknowledged_at", "-raised_at"])]

    def __str__(self) -> str:
        return f"{self.region_id}/{self.category_id}: {len(self.ticket_ids)}"


class RoutingCursor(models.Model):
    """How far `route_pending` has followed ticketing's TicketEvent log; `recent` as in the search cursor:
    ids handled within the grace window below `last_event_id` (PostgreSQL takes ids at insert)."""

    name = models.CharField(max_length=32, unique=True)
    last_event_id = models.BigIntegerField(default=0)
    recent = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = _("派单进度")
        verbose_name_plural = _("派单进度")

    def __str__(self) -> str:
        return f"{self.name}: {self.last_event_id}"
