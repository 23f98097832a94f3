"""Tickets and the organisation around them: regions, departments, people, categories, deadline policies.

Fields, constraints and indexes only. Writes go through `services`, reads through `selectors`.
"""

from typing import Any

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .workflow import Status, Transition


class Role(models.TextChoices):
    AGENT = "agent", _("话务员")
    DISPATCHER = "dispatcher", _("派单员")
    DEPARTMENT_HANDLER = "department_handler", _("承办人员")
    DEPARTMENT_LEAD = "department_lead", _("承办单位负责人")
    SUPERVISOR = "supervisor", _("督办人员")
    ADMINISTRATOR = "administrator", _("系统管理员")


DEPARTMENT_ROLES = frozenset({Role.DEPARTMENT_HANDLER, Role.DEPARTMENT_LEAD})


class RegionLevel(models.IntegerChoices):
    PROVINCE = 1, _("省")
    CITY = 2, _("市")
    DISTRICT = 3, _("区县")
    STREET = 4, _("街道乡镇")
    COMMUNITY = 5, _("社区村")


class Region(models.Model):
    """A node of the administrative tree; `code` is the statistical division code (12 digits at the
    community level, 6 for province, city and district as in GB/T 2260)."""

    code = models.CharField(_("区划代码"), max_length=12, unique=True)
    name = models.CharField(_("名称"), max_length=64)
    level = models.PositiveSmallIntegerField(_("层级"), choices=RegionLevel.choices)
    parent = models.ForeignKey(
        "self", verbose_name=_("上级"), null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )

    class Meta:
        verbose_name = _("行政区划")
        verbose_name_plural = _("行政区划")
        ordering = ["code"]
        indexes = [models.Index(fields=["parent", "name"])]

    def __str__(self) -> str:
        return self.name


class DepartmentKind(models.TextChoices):
    HOTLINE_CENTRE = "hotline_centre", _("热线中心")
    CITY_BUREAU = "city_bureau", _("市直部门")
    DISTRICT_GOVERNMENT = "district_government", _("区县政府")
    DISTRICT_BUREAU = "district_bureau", _("区县部门")
    STREET_OFFICE = "street_office", _("街道办事处/乡镇政府")
    COMMUNITY = "community", _("社区居委会/村委会")
    PUBLIC_UTILITY = "public_utility", _("公共服务企业")


class Department(models.Model):
    code = models.CharField(_("单位编码"), max_length=32, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    kind = models.CharField(_("类型"), max_length=32, choices=DepartmentKind.choices)
    parent = models.ForeignKey(
        "self", verbose_name=_("上级单位"), null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    jurisdiction = models.ManyToManyField(Region, verbose_name=_("管辖区域"), blank=True, related_name="departments")
    accepts_dispatch = models.BooleanField(_("可接收派单"), default=True)
    is_active = models.BooleanField(_("启用"), default=True)
    contact_name = models.CharField(_("联系人"), max_length=64, blank=True)
    contact_phone = models.CharField(_("联系电话"), max_length=32, blank=True)
    duty_phone = models.CharField(_("值班电话"), max_length=32, blank=True)

    class Meta:
        verbose_name = _("承办单位")
        verbose_name_plural = _("承办单位")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class ResponsibilityItem(models.Model):
    """One entry of a department's responsibility list (权责清单), matched by routing."""

    department = models.ForeignKey(
        Department, verbose_name=_("承办单位"), on_delete=models.CASCADE, related_name="responsibilities"
    )
    title = models.CharField(_("事项"), max_length=200)
    description = models.TextField(_("说明"), blank=True)
    legal_basis = models.CharField(_("依据"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("权责清单事项")
        verbose_name_plural = _("权责清单事项")
        ordering = ["department_id", "id"]

    def __str__(self) -> str:
        return self.title


class User(AbstractUser):
    role = models.CharField(_("角色"), max_length=32, choices=Role.choices, default=Role.AGENT)
    full_name = models.CharField(_("姓名"), max_length=64, blank=True)
    departments = models.ManyToManyField(Department, verbose_name=_("所属单位"), blank=True, related_name="members")

    class Meta:
        verbose_name = _("用户")
        verbose_name_plural = _("用户")

    def __str__(self) -> str:
        return self.full_name or self.username


class Category(models.Model):
    """Two levels: a first-level category (parent is null) and its second-level children."""

    name = models.CharField(_("名称"), max_length=64)
    parent = models.ForeignKey(
        "self", verbose_name=_("上级分类"), null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    sort_order = models.PositiveIntegerField(_("排序"), default=0)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("诉求分类")
        verbose_name_plural = _("诉求分类")
        ordering = ["sort_order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["parent", "name"], name="category_unique_name_in_parent"),
            models.UniqueConstraint(
                fields=["name"], condition=Q(parent__isnull=True), name="category_unique_top_level_name"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.parent.name}/{self.name}" if self.parent_id and self.parent else self.name


class AppealType(models.TextChoices):
    INQUIRY = "inquiry", _("咨询")
    HELP = "help", _("求助")
    COMPLAINT = "complaint", _("投诉")
    REPORT = "report", _("举报")
    SUGGESTION = "suggestion", _("建议")
    PRAISE = "praise", _("表扬")


class Urgency(models.TextChoices):
    NORMAL = "normal", _("一般")
    URGENT = "urgent", _("紧急")
    CRITICAL = "critical", _("特急（危及生命财产安全）")


class Channel(models.TextChoices):
    PHONE = "phone", _("电话")
    WEB = "web", _("网站")
    API = "api", _("接口")
    WECHAT = "wechat", _("微信")
    APP = "app", _("移动应用")
    OPEN311 = "open311", _("Open311")
    EMAIL = "email", _("电子邮件")
    SMS = "sms", _("短信")


class DurationUnit(models.TextChoices):
    WORKING_DAYS = "working_days", _("工作日")
    WORKING_HOURS = "working_hours", _("工作小时")
    MINUTES = "minutes", _("自然分钟")


class DeadlinePolicy(models.Model):
    """Deadlines for tickets that match it; empty conditions match anything.

    The most specific active policy wins (see `deadlines.policy_for`).
    """

    name = models.CharField(_("名称"), max_length=100)
    appeal_type = models.CharField(_("诉求类型"), max_length=16, choices=AppealType.choices, blank=True)
    urgency = models.CharField(_("紧急程度"), max_length=16, choices=Urgency.choices, blank=True)
    category = models.ForeignKey(
        Category, verbose_name=_("诉求分类"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    accept_within = models.PositiveIntegerField(_("签收时限"))
    accept_unit = models.CharField(_("签收时限单位"), max_length=16, choices=DurationUnit.choices)
    return_within = models.PositiveIntegerField(_("退单时限"))
    return_unit = models.CharField(_("退单时限单位"), max_length=16, choices=DurationUnit.choices)
    reply_within = models.PositiveIntegerField(_("答复时限"))
    reply_unit = models.CharField(_("答复时限单位"), max_length=16, choices=DurationUnit.choices)
    max_extensions = models.PositiveSmallIntegerField(_("最多延期次数"), default=1)
    max_extension_working_days = models.PositiveSmallIntegerField(_("单次延期最多工作日"), default=10)
    warning_percent = models.PositiveSmallIntegerField(
        _("预警阈值（已用时限百分比）"), default=80, help_text=_("时限用去该比例时预警，1–99。")
    )
    source = models.CharField(_("依据"), max_length=300, blank=True)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("办理时限规则")
        verbose_name_plural = _("办理时限规则")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(warning_percent__gte=1, warning_percent__lte=99), name="policy_warning_percent_range"
            ),
            models.CheckConstraint(
                condition=Q(accept_within__gt=0, return_within__gt=0, reply_within__gt=0),
                name="policy_durations_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CalendarDay(models.Model):
    """A local override of the statutory calendar: a holiday or a make-up working day.

    The statutory calendar comes from the `chinese_calendar` package; this table lets a city add a year the
    package does not know yet (the State Council publishes each year's schedule in the autumn before).
    """

    date = models.DateField(_("日期"), unique=True)
    is_working_day = models.BooleanField(_("是否工作日"))
    note = models.CharField(_("说明"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("工作日历调整")
        verbose_name_plural = _("工作日历调整")
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date} {'工作日' if self.is_working_day else '休息日'}"


class ReplyResult(models.TextChoices):
    SOLVED = "solved", _("已解决")
    PARTLY_SOLVED = "partly_solved", _("部分解决")
    NOT_SOLVED = "not_solved", _("未解决")
    EXPLAINED = "explained", _("已解释说明")


class Satisfaction(models.TextChoices):
    SATISFIED = "satisfied", _("满意")
    FAIRLY_SATISFIED = "fairly_satisfied", _("基本满意")
    DISSATISFIED = "dissatisfied", _("不满意")


class ExternalTarget(models.TextChoices):
    POLICE_110 = "110", _("110 报警")
    FIRE_119 = "119", _("119 火警")
    AMBULANCE_120 = "120", _("120 急救")
    TRAFFIC_122 = "122", _("122 交通事故")
    LITIGATION = "litigation", _("诉讼途径")
    ARBITRATION = "arbitration", _("仲裁途径")
    PETITION = "petition", _("信访途径")
    DISCLOSURE = "disclosure", _("政府信息公开申请")


class Ticket(models.Model):
    number = models.CharField(_("工单编号"), max_length=32, unique=True, editable=False)
    hotline_line = models.CharField(_("热线号码"), max_length=16)
    channel = models.CharField(_("来源渠道"), max_length=16, choices=Channel.choices)
    status = models.CharField(_("状态"), max_length=20, choices=Status.choices, default=Status.DRAFT, editable=False)

    appeal_type = models.CharField(_("诉求类型"), max_length=16, choices=AppealType.choices)
    category = models.ForeignKey(
        Category, verbose_name=_("诉求分类"), null=True, blank=True, on_delete=models.PROTECT, related_name="tickets"
    )
    urgency = models.CharField(_("紧急程度"), max_length=16, choices=Urgency.choices, default=Urgency.NORMAL)
    title = models.CharField(_("标题"), max_length=200)
    content = models.TextField(_("诉求内容"))
    location_text = models.CharField(_("地点"), max_length=300, blank=True)
    region = models.ForeignKey(
        Region, verbose_name=_("所属区域"), null=True, blank=True, on_delete=models.PROTECT, related_name="tickets"
    )

    caller_name = models.CharField(_("来电人姓名"), max_length=64, blank=True)
    caller_phone = models.CharField(_("联系电话"), max_length=32, blank=True)
    caller_id_number = models.CharField(_("身份证号"), max_length=18, blank=True)
    caller_confidential = models.BooleanField(_("要求保密"), default=False)

    lead_department = models.ForeignKey(
        Department,
        verbose_name=_("主办单位"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="led_tickets",
    )
    assisting_departments = models.ManyToManyField(
        Department, verbose_name=_("协办单位"), blank=True, related_name="assisted_tickets"
    )
    # The sub-unit of the lead department working on the ticket; the lead department still replies.
    handling_unit = models.ForeignKey(
        Department,
        verbose_name=_("承办科室"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="handled_tickets",
    )
    # Set while the clock is stopped because the citizen is being waited on (suspended).
    paused_at = models.DateTimeField(_("暂停计时时间"), null=True, blank=True)

    deadline_policy = models.ForeignKey(
        DeadlinePolicy, verbose_name=_("时限规则"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    dispatched_at = models.DateTimeField(_("派单时间"), null=True, blank=True)
    accept_due_at = models.DateTimeField(_("签收时限"), null=True, blank=True)
    accept_warning_at = models.DateTimeField(_("签收预警时间"), null=True, blank=True)
    return_due_at = models.DateTimeField(_("退单时限"), null=True, blank=True)
    reply_due_at = models.DateTimeField(_("答复时限"), null=True, blank=True)
    reply_warning_at = models.DateTimeField(_("答复预警时间"), null=True, blank=True)
    accepted_at = models.DateTimeField(_("签收时间"), null=True, blank=True)
    replied_at = models.DateTimeField(_("答复时间"), null=True, blank=True)
    closed_at = models.DateTimeField(_("办结时间"), null=True, blank=True)
    extension_count = models.PositiveSmallIntegerField(_("已延期次数"), default=0)
    return_count = models.PositiveSmallIntegerField(_("退单次数"), default=0)
    reopen_count = models.PositiveSmallIntegerField(_("重办次数"), default=0)

    reply_text = models.TextField(_("答复内容"), blank=True)
    reply_result = models.CharField(_("办理结果"), max_length=16, choices=ReplyResult.choices, blank=True)
    satisfaction = models.CharField(_("满意度"), max_length=20, choices=Satisfaction.choices, blank=True)
    satisfaction_comment = models.CharField(_("回访意见"), max_length=1000, blank=True)
    external_target = models.CharField(_("转外部去向"), max_length=16, choices=ExternalTarget.choices, blank=True)

    duplicate_of = models.ForeignKey(
        "self", verbose_name=_("重复件原件"), null=True, blank=True, on_delete=models.PROTECT, related_name="duplicates"
    )
    merged_into = models.ForeignKey(
        "self", verbose_name=_("并入工单"), null=True, blank=True, on_delete=models.PROTECT, related_name="merged"
    )
    reopened_from = models.ForeignKey(
        "self", verbose_name=_("重办来源"), null=True, blank=True, on_delete=models.PROTECT, related_name="reopenings"
    )

    query_code = models.CharField(_("查询码"), max_length=8, editable=False)
    created_by = models.ForeignKey(
        User, verbose_name=_("受理人"), null=True, blank=True, on_delete=models.SET_NULL, related_name="created_tickets"
    )
    created_at = models.DateTimeField(_("受理时间"), editable=False)
    updated_at = models.DateTimeField(_("更新时间"), editable=False)

    class Meta:
        verbose_name = _("工单")
        verbose_name_plural = _("工单")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "-created_at"]),
            models.Index(fields=["lead_department", "status"]),
            models.Index(fields=["caller_phone"]),
            models.Index(fields=["created_by", "status"]),
            models.Index(fields=["reply_due_at"]),
            models.Index(fields=["accept_due_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(merged_into=models.F("id")) | Q(merged_into__isnull=True),
                name="ticket_not_merged_into_self",
            ),
        ]

    def __str__(self) -> str:
        return self.number


class TicketEvent(models.Model):
    """The append-only trail of a ticket (全程留痕). `data` holds machine values, never display text.

    The auto-increment id is the order of events across all tickets; realtime clients resume from it.
    """

    ticket = models.ForeignKey(Ticket, verbose_name=_("工单"), on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(_("类型"), max_length=32)
    actor = models.ForeignKey(
        User, verbose_name=_("操作人"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    from_status = models.CharField(_("原状态"), max_length=20, choices=Status.choices, blank=True)
    to_status = models.CharField(_("新状态"), max_length=20, choices=Status.choices, blank=True)
    data = models.JSONField(_("数据"), default=dict, blank=True)
    created_at = models.DateTimeField(_("时间"))

    class Meta:
        verbose_name = _("工单流转记录")
        verbose_name_plural = _("工单流转记录")
        ordering = ["id"]
        # By time: the measures count steps by when they happened, and screens catch up from a moment.
        indexes = [models.Index(fields=["ticket", "id"]), models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"{self.ticket_id}#{self.pk} {self.kind}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise RuntimeError("ticket events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise RuntimeError("ticket events are append-only")


# Event kinds that are not transitions.
EVENT_CREATED = "created"
EVENT_UPDATED = "updated"
EVENT_CONTACT_VIEWED = "contact_viewed"
EVENT_MERGED_IN = "merged_in"
EVENT_NOTE = "note"
EVENT_DEADLINE = "deadline"
EVENT_HANDED_TO_UNIT = "handed_to_unit"
EVENT_ASSISTING_REPLY = "assisting_reply"
EVENT_ATTACHMENT = "attachment"
EVENT_CALLBACK = "callback"
EVENT_ESCALATION = "escalation"
EVENT_URGED = "urged"
EVENT_SUPERVISION_ISSUED = "supervision_issued"
EVENT_SUPERVISION_RESPONDED = "supervision_responded"
EVENT_SUPERVISION_CLOSED = "supervision_closed"
EVENT_SUPERVISION_ESCALATED = "supervision_escalated"
EVENT_SUPERVISION_OVERDUE = "supervision_overdue"
EVENT_KINDS = [
    EVENT_CREATED,
    EVENT_UPDATED,
    EVENT_CONTACT_VIEWED,
    EVENT_MERGED_IN,
    EVENT_NOTE,
    EVENT_DEADLINE,
    EVENT_HANDED_TO_UNIT,
    EVENT_ASSISTING_REPLY,
    EVENT_ATTACHMENT,
    EVENT_CALLBACK,
    EVENT_ESCALATION,
    EVENT_URGED,
    EVENT_SUPERVISION_ISSUED,
    EVENT_SUPERVISION_RESPONDED,
    EVENT_SUPERVISION_CLOSED,
    EVENT_SUPERVISION_ESCALATED,
    EVENT_SUPERVISION_OVERDUE,
    *Transition.values,
]


class TicketEventDepartment(models.Model):
    """The departments a ticket event was sent to, so a department screen can catch up on exactly what it
    missed, including events of tickets that have since left the department (returned, reassigned)."""

    event = models.ForeignKey(TicketEvent, on_delete=models.CASCADE, related_name="audience")
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "department"], name="ticket_event_department_unique"),
        ]
        indexes = [models.Index(fields=["department", "event"])]

    def __str__(self) -> str:
        return f"{self.event_id}->{self.department_id}"


class DailyCounts(models.Model):
    """The measures' counts (measures.Counts, all but the lapsed holds, which depend on the moment asked) of one
    local day for one department; department NULL: the centre's own (instant replies, tickets not dispatched).

    Derived data: the services add what each trail event counts in the event's own transaction
    (`rollups.count_event`), so the board reads a few thousand rows instead of a month of trail; `rollups.rebuild`
    recomputes every row from the trail. Tests hold them equal to the measures computed from the trail.
    """

    day = models.DateField(_("日期"))
    department = models.ForeignKey(
        Department, verbose_name=_("承办单位"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    intake = models.IntegerField(_("受理量"), default=0)
    instant_replies = models.IntegerField(_("即时答复量"), default=0)
    dispatched = models.IntegerField(_("派单量"), default=0)
    accepted_on_time = models.IntegerField(_("按时签收量"), default=0)
    accepted_late = models.IntegerField(_("超时签收量"), default=0)
    returns = models.IntegerField(_("退单申请量"), default=0)
    returns_refused = models.IntegerField(_("退单被驳回量"), default=0)
    replied = models.IntegerField(_("答复量"), default=0)
    replied_on_time = models.IntegerField(_("按时答复量"), default=0)
    replies_approved = models.IntegerField(_("审核通过答复量"), default=0)
    resolved = models.IntegerField(_("已解决量"), default=0)
    satisfied = models.IntegerField(_("满意"), default=0)
    fairly_satisfied = models.IntegerField(_("基本满意"), default=0)
    dissatisfied = models.IntegerField(_("不满意"), default=0)
    callback_unreachable = models.IntegerField(_("回访未联系上"), default=0)

    class Meta:
        verbose_name = _("每日统计")
        verbose_name_plural = _("每日统计")
        constraints = [
            # Its index also serves the reads by period.
            models.UniqueConstraint(fields=["day", "department"], name="daily_counts_department"),
            # The one above lets NULL departments repeat (NULLs are distinct), so the centre's row has its own.
            models.UniqueConstraint(fields=["day"], condition=Q(department__isnull=True), name="daily_counts_centre"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.department_id or '-'}"


class ExtensionStatus(models.TextChoices):
    PENDING = "pending", _("待审批")
    APPROVED = "approved", _("已批准")
    REJECTED = "rejected", _("已驳回")


class ExtensionRequest(models.Model):
    ticket = models.ForeignKey(Ticket, verbose_name=_("工单"), on_delete=models.CASCADE, related_name="extensions")
    department = models.ForeignKey(Department, verbose_name=_("申请单位"), on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(User, verbose_name=_("申请人"), on_delete=models.PROTECT, related_name="+")
    working_days = models.PositiveSmallIntegerField(_("延期工作日"))
    reason = models.CharField(_("理由"), max_length=1000)
    status = models.CharField(
        _("审批状态"), max_length=16, choices=ExtensionStatus.choices, default=ExtensionStatus.PENDING
    )
    decided_by = models.ForeignKey(
        User, verbose_name=_("审批人"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(_("审批时间"), null=True, blank=True)
    decision_note = models.CharField(_("审批意见"), max_length=1000, blank=True)
    created_at = models.DateTimeField(_("申请时间"))

    class Meta:
        verbose_name = _("延期申请")
        verbose_name_plural = _("延期申请")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket"], condition=Q(status="pending"), name="one_pending_extension_per_ticket"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.working_days}"


class TicketNumberSequence(models.Model):
    """The last number handed out per hotline line and day; one row locked per create."""

    hotline_line = models.CharField(max_length=16)
    day = models.DateField()
    last_value = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hotline_line", "day"], name="ticket_number_sequence_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.hotline_line} {self.day}: {self.last_value}"


class IdempotencyKey(models.Model):
    """A client's Idempotency-Key for a create; the same key from the same user returns the same ticket."""

    key = models.CharField(max_length=128)
    actor = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    fingerprint = models.CharField(max_length=64)
    ticket = models.ForeignKey(Ticket, null=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["actor", "key"], name="idempotency_key_unique_per_actor")]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"{self.actor_id}:{self.key}"


# ---------------------------------------------------------------------------------------------------------
# deadlines and supervision


class EscalationAction(models.TextChoices):
    URGE = "urge", _("自动催办")
    NOTIFY_LEAD = "notify_lead", _("通知承办单位负责人")
    SUPERVISION_ORDER = "supervision_order", _("生成督办单")
    FORMAL_NOTICE = "formal_notice", _("通报督办")


class EscalationStep(models.Model):
    """One rung of the escalation ladder administrators configure: what happens how long after a deadline
    passes (0 working days: at the deadline)."""

    name = models.CharField(_("名称"), max_length=100)
    deadline = models.CharField(
        _("时限"), max_length=16, choices=[("accept", _("签收时限")), ("reply", _("答复时限"))], default="reply"
    )
    after_working_days = models.PositiveSmallIntegerField(_("超期后工作日"), default=0)
    action = models.CharField(_("动作"), max_length=32, choices=EscalationAction.choices)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("升级阶梯")
        verbose_name_plural = _("升级阶梯")
        ordering = ["deadline", "after_working_days", "id"]
        constraints = [
            models.UniqueConstraint(fields=["deadline", "after_working_days", "action"], name="escalation_step_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class SupervisionLevel(models.IntegerChoices):
    CENTRE = 1, _("热线中心督办")
    GOVERNMENT_OFFICE = 2, _("政府办公室督办")
    GOVERNMENT_LEADER = 3, _("政府领导督办")


class SupervisionStatus(models.TextChoices):
    OPEN = "open", _("督办中")
    ANSWERED = "answered", _("已反馈")
    CLOSED = "closed", _("已结束")


class SupervisionOrder(models.Model):
    """A supervision order (督办单) on a ticket, with its own deadline for the department's answer."""

    ticket = models.ForeignKey(
        Ticket, verbose_name=_("工单"), on_delete=models.PROTECT, related_name="supervision_orders"
    )
    department = models.ForeignKey(
        Department, verbose_name=_("被督办单位"), on_delete=models.PROTECT, related_name="supervision_orders"
    )
    level = models.PositiveSmallIntegerField(
        _("督办级别"), choices=SupervisionLevel.choices, default=SupervisionLevel.CENTRE
    )
    formal_notice = models.BooleanField(_("通报"), default=False)
    reason = models.CharField(_("督办事由"), max_length=1000)
    status = models.CharField(
        _("状态"), max_length=16, choices=SupervisionStatus.choices, default=SupervisionStatus.OPEN
    )
    issued_by = models.ForeignKey(
        User, verbose_name=_("督办人"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    issued_at = models.DateTimeField(_("督办时间"))
    due_at = models.DateTimeField(_("反馈时限"))
    urge_count = models.PositiveSmallIntegerField(_("催办次数"), default=0)
    last_urged_at = models.DateTimeField(_("最近催办时间"), null=True, blank=True)
    response = models.TextField(_("反馈内容"), blank=True)
    responded_by = models.ForeignKey(
        User, verbose_name=_("反馈人"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    responded_at = models.DateTimeField(_("反馈时间"), null=True, blank=True)
    closed_by = models.ForeignKey(
        User, verbose_name=_("结束人"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    overdue_marked_at = models.DateTimeField(_("超期标记时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("督办单")
        verbose_name_plural = _("督办单")
        ordering = ["-issued_at", "-id"]
        indexes = [
            models.Index(fields=["status", "due_at"]),
            models.Index(fields=["department", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.get_level_display()}"


class Escalation(models.Model):
    """A ladder step taken for one deadline of one ticket. The unique constraint makes each step happen
    exactly once per deadline, however many sweepers run."""

    ticket = models.ForeignKey(Ticket, verbose_name=_("工单"), on_delete=models.PROTECT, related_name="escalations")
    step = models.ForeignKey(EscalationStep, verbose_name=_("阶梯"), on_delete=models.PROTECT, related_name="taken")
    due_at = models.DateTimeField(_("所依据的时限"))
    taken_at = models.DateTimeField(_("执行时间"))
    supervision_order = models.ForeignKey(
        SupervisionOrder, verbose_name=_("督办单"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("升级记录")
        verbose_name_plural = _("升级记录")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "step", "due_at"], name="escalation_once_per_deadline"),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.step_id}"


# ---------------------------------------------------------------------------------------------------------
# handling: assisting departments' parts, attachments


class AssistingReply(models.Model):
    """An assisting department's part (协办意见); the lead department folds it into its reply."""

    ticket = models.ForeignKey(
        Ticket, verbose_name=_("工单"), on_delete=models.PROTECT, related_name="assisting_replies"
    )
    department = models.ForeignKey(Department, verbose_name=_("协办单位"), on_delete=models.PROTECT, related_name="+")
    author = models.ForeignKey(User, verbose_name=_("填写人"), on_delete=models.PROTECT, related_name="+")
    text = models.TextField(_("协办意见"))
    created_at = models.DateTimeField(_("时间"))

    class Meta:
        verbose_name = _("协办意见")
        verbose_name_plural = _("协办意见")
        ordering = ["id"]
        indexes = [models.Index(fields=["ticket", "id"])]

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.department_id}"


class TicketAttachment(models.Model):
    """A file on a ticket (the citizen's photos of the scene, the department's documents). Internal: staff
    who may see the ticket download it through the API; the public never does."""

    ticket = models.ForeignKey(Ticket, verbose_name=_("工单"), on_delete=models.PROTECT, related_name="attachments")
    file = models.FileField(_("文件"), upload_to="attachments/%Y/%m/")
    name = models.CharField(_("文件名"), max_length=200)
    content_type = models.CharField(_("类型"), max_length=100)
    size = models.PositiveIntegerField(_("大小"))
    sha256 = models.CharField(max_length=64)
    department = models.ForeignKey(
        Department, verbose_name=_("上传单位"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # None: the citizen, with the request (public site, Open311).
    uploaded_by = models.ForeignKey(
        User, verbose_name=_("上传人"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("上传时间"))

    class Meta:
        verbose_name = _("附件")
        verbose_name_plural = _("附件")
        ordering = ["id"]
        indexes = [models.Index(fields=["ticket", "id"])]

    def __str__(self) -> str:
        return self.name


# ---------------------------------------------------------------------------------------------------------
# callback


class CallbackMethod(models.TextChoices):
    AGENT = "agent", _("人工回访")
    VOICE = "voice", _("语音自动回访")
    PUBLIC = "public", _("群众网上评价")


class CallbackStatus(models.TextChoices):
    PENDING = "pending", _("待回访")
    CALLING = "calling", _("回访中")
    DONE = "done", _("已回访")
    UNREACHABLE = "unreachable", _("联系不上")
    CANCELLED = "cancelled", _("已取消")


CALLBACK_OPEN = (CallbackStatus.PENDING, CallbackStatus.CALLING)


class CallbackTask(models.Model):
    """Callback work for a replied ticket: an agent's call, an automated voice call, or the citizen's own
    rating on the public page. At most one is open per ticket."""

    ticket = models.ForeignKey(Ticket, verbose_name=_("工单"), on_delete=models.PROTECT, related_name="callbacks")
    method = models.CharField(_("回访方式"), max_length=16, choices=CallbackMethod.choices)
    status = models.CharField(_("状态"), max_length=16, choices=CallbackStatus.choices, default=CallbackStatus.PENDING)
    assigned_to = models.ForeignKey(
        User, verbose_name=_("回访人"), null=True, blank=True, on_delete=models.PROTECT, related_name="callbacks"
    )
    attempts = models.PositiveSmallIntegerField(_("拨打次数"), default=0)
    created_at = models.DateTimeField(_("生成时间"))
    due_at = models.DateTimeField(_("回访时限"), null=True, blank=True)
    started_at = models.DateTimeField(_("开始时间"), null=True, blank=True)
    finished_at = models.DateTimeField(_("完成时间"), null=True, blank=True)
    finished_by = models.ForeignKey(
        User, verbose_name=_("记录人"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    satisfaction = models.CharField(_("满意度"), max_length=20, choices=Satisfaction.choices, blank=True)
    comment = models.CharField(_("回访意见"), max_length=1000, blank=True)

    class Meta:
        verbose_name = _("回访任务")
        verbose_name_plural = _("回访任务")
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["status", "method", "created_at"]),
            models.Index(fields=["assigned_to", "status"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket"], condition=Q(status__in=["pending", "calling"]), name="one_open_callback_per_ticket"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.method}"


# ---------------------------------------------------------------------------------------------------------
# Open311 GeoReport v2


class Open311Client(models.Model):
    """An application allowed to file requests through the Open311 API (its `api_key`). Only the key's SHA-256 is
    kept: the key itself is shown once, when it is issued."""

    name = models.CharField(_("名称"), max_length=100)
    key_hash = models.CharField(_("密钥摘要"), max_length=64, unique=True, editable=False)
    is_active = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"), editable=False)
    last_used_at = models.DateTimeField(_("最近使用时间"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("Open311 接入应用")
        verbose_name_plural = _("Open311 接入应用")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class Open311Request(models.Model):
    """What an Open311 client sent with a request beyond the ticket's own fields: which client, the coordinates
    and address id (given back in the request lists), and the citizen's e-mail (a ticket has no field for it)."""

    ticket = models.OneToOneField(Ticket, verbose_name=_("工单"), on_delete=models.PROTECT, related_name="open311")
    client = models.ForeignKey(
        Open311Client, verbose_name=_("接入应用"), on_delete=models.PROTECT, related_name="requests"
    )
    latitude = models.DecimalField(_("纬度"), max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(_("经度"), max_digits=9, decimal_places=6, null=True, blank=True)
    address_id = models.CharField(_("地址编号"), max_length=100, blank=True)
    email = models.EmailField(_("电子邮箱"), blank=True)

    class Meta:
        verbose_name = _("Open311 诉求")
        verbose_name_plural = _("Open311 诉求")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.client_id}"
