"""Serializers of the handling endpoints (sub-units, assisting parts, attachments, notes) and of the department
workbench's inbox. What an uploaded file really is, is checked in `ticketing.files`.

Nothing here writes: views hand validated data to services. No caller data leaves through these serializers.
"""

from datetime import datetime
from typing import Any

from django.urls import reverse
from rest_framework import serializers

from hotline.api.serializers import StrictSerializer

# Re-exported: the handling views sniff uploads through this module.
from ..files import sniffed_content_type as sniffed_content_type
from ..models import AssistingReply, ExtensionRequest, Ticket, TicketAttachment
from ..services import ASSISTING_REPLY_MAX_LENGTH, NOTE_MAX_LENGTH
from ..workbench_selectors import WORKBENCH_DEADLINES, WorkbenchInbox
from ..workflow import Status
from .serializers import DepartmentBriefSerializer

# --- input -----------------------------------------------------------------------------------------------


class HandToUnitInput(StrictSerializer):
    unit = serializers.IntegerField(
        min_value=1, allow_null=True, help_text="下级单位编号；null 表示收回由主办单位自办。"
    )
    note = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class AssistingReplyInput(StrictSerializer):
    department = serializers.IntegerField(min_value=1, help_text="以哪个协办单位的名义填写。")
    text = serializers.CharField(max_length=ASSISTING_REPLY_MAX_LENGTH)


class TicketNoteInput(StrictSerializer):
    text = serializers.CharField(max_length=NOTE_MAX_LENGTH)


class AttachmentUploadInput(StrictSerializer):
    # Empty files pass here so that the service refuses them with its own code (empty_file).
    file = serializers.FileField(allow_empty_file=True, use_url=False)


# --- output ----------------------------------------------------------------------------------------------


class DepartmentNodeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    depth = serializers.IntegerField(help_text="在树中的层级，0 为最上层。")


class AssistingReplySerializer(serializers.ModelSerializer):
    department = DepartmentBriefSerializer(read_only=True)
    author = serializers.CharField(source="author.__str__", read_only=True)

    class Meta:
        model = AssistingReply
        fields = ["id", "department", "author", "text", "created_at"]
        read_only_fields = fields


class AttachmentSerializer(serializers.ModelSerializer):
    department = DepartmentBriefSerializer(read_only=True, allow_null=True)
    uploaded_by = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = TicketAttachment
        fields = ["id", "name", "content_type", "size", "department", "uploaded_by", "created_at", "url"]
        read_only_fields = fields

    def get_uploaded_by(self, attachment: TicketAttachment) -> str:
        # No uploader: the citizen sent it with the request.
        return str(attachment.uploaded_by) if attachment.uploaded_by_id else "群众（随诉求提交）"

    def get_url(self, attachment: TicketAttachment) -> str:
        return reverse("ticket-attachment-download", args=[attachment.ticket_id, attachment.id])


class PendingExtensionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ExtensionRequest
        fields = ["id", "working_days", "reason", "created_at"]
        read_only_fields = fields


class ExtensionInfoSerializer(serializers.Serializer):
    used = serializers.IntegerField(source="ticket.extension_count")
    max_extensions = serializers.IntegerField(source="ticket.deadline_policy.max_extensions", default=0)
    max_working_days = serializers.IntegerField(source="ticket.deadline_policy.max_extension_working_days", default=0)
    pending = PendingExtensionSerializer(source="pending_extension", allow_null=True)


class HandlingSerializer(serializers.Serializer):
    """Beside a ticket's detail: who handles it inside the lead department, what the user may do there, the
    assisting departments' parts, the files, and the extension rules."""

    ticket = serializers.IntegerField(source="ticket.id")
    status = serializers.CharField(source="ticket.status")
    handling_unit = DepartmentBriefSerializer(source="ticket.handling_unit", allow_null=True)
    may_lead = serializers.BooleanField(help_text="当前用户可以主办单位的身份签收、退单、延期、答复、交办。")
    handing_units = DepartmentNodeSerializer(many=True, help_text="可交办的下级单位。")
    own_assisting_departments = DepartmentBriefSerializer(
        source="own_assisting", many=True, help_text="当前用户可代为填写协办意见的协办单位。"
    )
    assisting_replies = AssistingReplySerializer(many=True)
    attachments = AttachmentSerializer(many=True)
    extension = ExtensionInfoSerializer(source="*")
    return_due_at = serializers.DateTimeField(source="ticket.return_due_at", allow_null=True)


class WorkbenchTicketSerializer(serializers.ModelSerializer):
    """One inbox row; never any caller data."""

    status_display = serializers.CharField(source="get_status_display")
    urgency_display = serializers.CharField(source="get_urgency_display")
    appeal_type_display = serializers.CharField(source="get_appeal_type_display")
    category = serializers.SerializerMethodField()
    region = serializers.CharField(source="region.name", default=None)
    role = serializers.SerializerMethodField(
        help_text="本工作台在工单中的身份：lead 主办，unit 承办科室，assisting 协办。"
    )
    lead_department = DepartmentBriefSerializer(allow_null=True)
    handling_unit = DepartmentBriefSerializer(allow_null=True)
    deadline = serializers.SerializerMethodField(help_text="正在计时的时限：accept 签收，reply 答复；不计时为 null。")
    due_at = serializers.DateTimeField(source="workbench_due_at", allow_null=True)
    warning_at = serializers.DateTimeField(source="workbench_warning_at", allow_null=True)
    sla = serializers.SerializerMethodField(
        help_text="ok 正常，warning 预警，overdue 超期，paused 暂停计时（等待群众），none 不计时。"
    )

    class Meta:
        model = Ticket
        fields = [
            "id",
            "number",
            "title",
            "status",
            "status_display",
            "urgency",
            "urgency_display",
            "appeal_type_display",
            "category",
            "region",
            "role",
            "lead_department",
            "handling_unit",
            "deadline",
            "due_at",
            "warning_at",
            "sla",
            "dispatched_at",
        ]
        read_only_fields = fields

    def get_category(self, ticket: Ticket) -> str | None:
        return str(ticket.category) if ticket.category else None

    def get_role(self, ticket: Ticket) -> str:
        scope: frozenset[int] = self.context["department_ids"]
        if ticket.lead_department_id in scope:
            return "lead"
        if ticket.handling_unit_id in scope:
            return "unit"
        return "assisting"

    def get_deadline(self, ticket: Ticket) -> str | None:
        return WORKBENCH_DEADLINES.get(ticket.status)

    def get_sla(self, ticket: Ticket) -> str:
        now: datetime = self.context["now"]
        due: datetime | None = getattr(ticket, "workbench_due_at", None)
        warning: datetime | None = getattr(ticket, "workbench_warning_at", None)
        if ticket.status == Status.SUSPENDED:
            return "paused"
        if due is None:
            return "none"
        if due <= now:
            return "overdue"
        if warning is not None and warning <= now:
            return "warning"
        return "ok"


class WorkbenchInboxSerializer(serializers.Serializer):
    """Build with `workbench_inbox_data`, which gives the rows the context they need."""

    department = DepartmentBriefSerializer()
    department_ids = serializers.ListField(child=serializers.IntegerField(), help_text="本工作台包含的单位。")
    counts = serializers.DictField(
        child=serializers.IntegerField(), help_text="各状态件数，及 warning、overdue、total。"
    )
    tickets = WorkbenchTicketSerializer(many=True, help_text="时限最近的在前，最多 200 件。")
    truncated = serializers.SerializerMethodField(help_text="还有未列出的工单。")
    last_event_id = serializers.IntegerField(help_text="实时连接从此编号之后接收（?after=）。")
    now = serializers.DateTimeField()

    def get_truncated(self, inbox: WorkbenchInbox) -> bool:
        return inbox.counts["total"] > len(inbox.tickets)

    def to_representation(self, instance: WorkbenchInbox) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["department_ids"] = sorted(instance.department_ids)
        return data


def workbench_inbox_data(inbox: WorkbenchInbox) -> dict[str, Any]:
    return WorkbenchInboxSerializer(inbox, context={"department_ids": inbox.department_ids, "now": inbox.now}).data
