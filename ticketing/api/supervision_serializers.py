"""Supervision orders and urging over the API: input shapes and the order as the screens read it."""

from django.conf import settings
from rest_framework import serializers

from hotline import clock
from hotline.api.serializers import StrictSerializer

from ..models import SupervisionLevel, SupervisionOrder, SupervisionStatus, Ticket, User
from ..supervision import MAX_DUE_WORKING_DAYS, REASON_MAX_LENGTH, RESPONSE_MAX_LENGTH
from .serializers import DepartmentBriefSerializer


def _default_due_working_days() -> int:
    return int(settings.SLA_SUPERVISION_DUE_WORKING_DAYS)


class SupervisionOrderIssueInput(StrictSerializer):
    reason = serializers.CharField(max_length=REASON_MAX_LENGTH)
    due_working_days = serializers.IntegerField(
        min_value=1,
        max_value=MAX_DUE_WORKING_DAYS,
        required=False,
        default=_default_due_working_days,
        help_text="反馈时限（工作日），默认取 SLA_SUPERVISION_DUE_WORKING_DAYS。",
    )
    level = serializers.ChoiceField(choices=SupervisionLevel.choices, required=False, default=SupervisionLevel.CENTRE)


class SupervisionOrderRespondInput(StrictSerializer):
    response = serializers.CharField(max_length=RESPONSE_MAX_LENGTH)


class SupervisionOrderCloseInput(StrictSerializer):
    note = serializers.CharField(max_length=REASON_MAX_LENGTH, required=False, allow_blank=True, default="")


class SupervisionOrderEscalateInput(StrictSerializer):
    reason = serializers.CharField(max_length=REASON_MAX_LENGTH)


class UrgeInput(StrictSerializer):
    message = serializers.CharField(max_length=REASON_MAX_LENGTH)


class SupervisionOrderListQuery(StrictSerializer):
    status = serializers.ChoiceField(choices=SupervisionStatus.choices, required=False)
    department = serializers.IntegerField(min_value=1, required=False)
    ticket = serializers.IntegerField(min_value=1, required=False)
    level = serializers.ChoiceField(choices=SupervisionLevel.choices, required=False)
    overdue = serializers.BooleanField(required=False, allow_null=True, default=None)
    page = serializers.IntegerField(min_value=1, required=False)
    page_size = serializers.IntegerField(min_value=1, max_value=200, required=False)
    format = serializers.CharField(max_length=10, required=False)


class TicketBriefSerializer(serializers.ModelSerializer):
    status_display = serializers.CharField(source="get_status_display", read_only=True)

    class Meta:
        model = Ticket
        fields = ["id", "number", "title", "status", "status_display", "reply_due_at"]
        read_only_fields = fields


class StaffBriefSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="__str__", read_only=True)

    class Meta:
        model = User
        fields = ["id", "name", "role"]
        read_only_fields = fields


class SupervisionOrderSerializer(serializers.ModelSerializer):
    ticket = TicketBriefSerializer(read_only=True)
    department = DepartmentBriefSerializer(read_only=True)
    level_display = serializers.CharField(source="get_level_display", read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    issued_by = StaffBriefSerializer(read_only=True, allow_null=True, help_text="null：升级阶梯自动生成。")
    responded_by = StaffBriefSerializer(read_only=True, allow_null=True)
    closed_by = StaffBriefSerializer(read_only=True, allow_null=True)
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = SupervisionOrder
        fields = [
            "id",
            "ticket",
            "department",
            "level",
            "level_display",
            "formal_notice",
            "reason",
            "status",
            "status_display",
            "issued_by",
            "issued_at",
            "due_at",
            "overdue",
            "overdue_marked_at",
            "urge_count",
            "last_urged_at",
            "response",
            "responded_by",
            "responded_at",
            "closed_by",
            "closed_at",
        ]
        read_only_fields = fields

    def get_overdue(self, order: SupervisionOrder) -> bool:
        """Still waiting for the department's answer after its own deadline."""
        now = self.context.get("now") or clock.now()
        return bool(order.status == SupervisionStatus.OPEN and order.due_at <= now)
