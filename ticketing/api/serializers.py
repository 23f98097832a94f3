"""Input serializers validate shape and types only; output serializers mask personal data.

Nothing here writes: views hand validated data to services.
"""

import re
from typing import Any

from django.conf import settings
from rest_framework import serializers

from hotline.api.serializers import StrictSerializer

from ..masking import mask_id_number, mask_name, mask_phone
from ..models import (
    AppealType,
    Category,
    Channel,
    Department,
    ExternalTarget,
    Region,
    ReplyResult,
    Satisfaction,
    Ticket,
    TicketEvent,
    Urgency,
    User,
)
from ..selectors import sees_everything
from ..services import INTAKE_ROLES, TicketInput
from ..workflow import Status, allowed_from

PHONE_PATTERN = re.compile(r"^\+?[0-9][0-9\- ]{3,19}$")
ID_NUMBER_PATTERN = re.compile(r"^[0-9]{17}[0-9Xx]$")
_ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_ID_CHECK = "10X98765432"


def validate_id_number(value: str) -> None:
    """A resident ID number (GB 11643): 17 digits and a check character."""
    if not value:
        return
    if not ID_NUMBER_PATTERN.match(value):
        raise serializers.ValidationError("身份证号应为 18 位。")
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != value[-1].upper():
        raise serializers.ValidationError("身份证号校验位不正确。")


def validate_phone(value: str) -> None:
    if value and not PHONE_PATTERN.match(value):
        raise serializers.ValidationError("联系电话格式不正确。")


class TicketCreateSerializer(StrictSerializer):
    hotline_line = serializers.CharField(max_length=16, required=False)
    channel = serializers.ChoiceField(choices=Channel.choices)
    appeal_type = serializers.ChoiceField(choices=AppealType.choices)
    urgency = serializers.ChoiceField(choices=Urgency.choices, default=Urgency.NORMAL)
    category = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    region = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    title = serializers.CharField(max_length=200)
    content = serializers.CharField(max_length=10000)
    location_text = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    caller_name = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    caller_phone = serializers.CharField(
        max_length=32, required=False, allow_blank=True, default="", validators=[validate_phone]
    )
    caller_id_number = serializers.CharField(
        max_length=18, required=False, allow_blank=True, default="", validators=[validate_id_number]
    )
    caller_confidential = serializers.BooleanField(required=False, default=False)
    duplicate_of = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    reopened_from = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    draft = serializers.BooleanField(required=False, default=False, help_text="通话中受理：先存为受理中草稿。")

    def to_input(self) -> tuple[TicketInput, bool]:
        data = dict(self.validated_data)
        draft = data.pop("draft")
        return (
            TicketInput(
                hotline_line=data.get("hotline_line") or settings.HOTLINE_LINES[0],
                channel=data["channel"],
                appeal_type=data["appeal_type"],
                urgency=data["urgency"],
                title=data["title"],
                content=data["content"],
                category_id=data.get("category"),
                region_id=data.get("region"),
                location_text=data["location_text"],
                caller_name=data["caller_name"],
                caller_phone=data["caller_phone"],
                caller_id_number=data["caller_id_number"],
                caller_confidential=data["caller_confidential"],
                duplicate_of_id=data.get("duplicate_of"),
                reopened_from_id=data.get("reopened_from"),
            ),
            draft,
        )


class TicketUpdateSerializer(StrictSerializer):
    appeal_type = serializers.ChoiceField(choices=AppealType.choices, required=False)
    urgency = serializers.ChoiceField(choices=Urgency.choices, required=False)
    category = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    region = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    title = serializers.CharField(max_length=200, required=False)
    content = serializers.CharField(max_length=10000, required=False)
    location_text = serializers.CharField(max_length=300, required=False, allow_blank=True)
    caller_name = serializers.CharField(max_length=64, required=False, allow_blank=True)
    caller_phone = serializers.CharField(max_length=32, required=False, allow_blank=True, validators=[validate_phone])
    caller_id_number = serializers.CharField(
        max_length=18, required=False, allow_blank=True, validators=[validate_id_number]
    )
    caller_confidential = serializers.BooleanField(required=False)
    duplicate_of = serializers.IntegerField(required=False, allow_null=True, min_value=1)

    def to_changes(self) -> dict[str, Any]:
        renamed = {"category": "category_id", "region": "region_id", "duplicate_of": "duplicate_of_id"}
        return {renamed.get(name, name): value for name, value in self.validated_data.items()}


# --- transition inputs -----------------------------------------------------------------------------------


class EmptyInput(StrictSerializer):
    pass


class InstantReplyInput(StrictSerializer):
    reply_text = serializers.CharField(max_length=10000)


class _DepartmentsInput(StrictSerializer):
    lead_department = serializers.IntegerField(min_value=1, source="lead_department_id")
    assisting_departments = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        default=list,
        max_length=20,
        source="assisting_department_ids",
    )


class DispatchInput(_DepartmentsInput):
    note = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class ReassignInput(_DepartmentsInput):
    reason = serializers.CharField(max_length=1000)


class ReasonInput(StrictSerializer):
    reason = serializers.CharField(max_length=1000)


class ExtensionRequestInput(StrictSerializer):
    working_days = serializers.IntegerField(min_value=1, max_value=60)
    reason = serializers.CharField(max_length=1000)


class NoteInput(StrictSerializer):
    note = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class RequiredNoteInput(StrictSerializer):
    note = serializers.CharField(max_length=1000)


class ReplyInput(StrictSerializer):
    reply_text = serializers.CharField(max_length=10000)
    result = serializers.ChoiceField(choices=ReplyResult.choices)


class CloseInput(StrictSerializer):
    satisfaction = serializers.ChoiceField(
        choices=[Satisfaction.SATISFIED, Satisfaction.FAIRLY_SATISFIED],
        allow_null=True,
        help_text="满意或基本满意；无法联系到来电人时为 null。",
    )
    comment = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class ReopenInput(StrictSerializer):
    comment = serializers.CharField(max_length=1000)


class MergeInput(StrictSerializer):
    into_ticket = serializers.IntegerField(min_value=1, source="into_ticket_id")
    note = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class TransferInput(StrictSerializer):
    target = serializers.ChoiceField(choices=ExternalTarget.choices)
    note = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


# --- output ----------------------------------------------------------------------------------------------


class DepartmentBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Department
        fields = ["id", "code", "name"]


class CategoryBriefSerializer(serializers.ModelSerializer):
    parent = serializers.CharField(source="parent.name", default=None, read_only=True)  # type: ignore[assignment]

    class Meta:
        model = Category
        fields = ["id", "name", "parent"]


class RegionBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Region
        fields = ["id", "code", "name", "level"]


class TicketListSerializer(serializers.ModelSerializer):
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    category = CategoryBriefSerializer(read_only=True)
    region = RegionBriefSerializer(read_only=True)
    lead_department = DepartmentBriefSerializer(read_only=True)
    caller_phone = serializers.SerializerMethodField()

    class Meta:
        model = Ticket
        fields = [
            "id",
            "number",
            "hotline_line",
            "channel",
            "status",
            "status_display",
            "appeal_type",
            "urgency",
            "category",
            "region",
            "title",
            "caller_phone",
            "lead_department",
            "accept_due_at",
            "reply_due_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_caller_phone(self, ticket: Ticket) -> str:
        return "" if ticket.caller_confidential else mask_phone(ticket.caller_phone)


class TicketDetailSerializer(TicketListSerializer):
    caller_name = serializers.SerializerMethodField()
    caller_id_number = serializers.SerializerMethodField()
    assisting_departments = DepartmentBriefSerializer(many=True, read_only=True)
    query_code = serializers.SerializerMethodField()
    allowed_transitions = serializers.SerializerMethodField()
    merged_into = serializers.CharField(source="merged_into.number", default=None, read_only=True)
    duplicate_of = serializers.CharField(source="duplicate_of.number", default=None, read_only=True)
    reopened_from = serializers.CharField(source="reopened_from.number", default=None, read_only=True)

    class Meta(TicketListSerializer.Meta):
        fields = [
            *TicketListSerializer.Meta.fields,
            "content",
            "location_text",
            "caller_name",
            "caller_id_number",
            "caller_confidential",
            "assisting_departments",
            "dispatched_at",
            "accept_warning_at",
            "return_due_at",
            "reply_warning_at",
            "accepted_at",
            "replied_at",
            "closed_at",
            "extension_count",
            "return_count",
            "reopen_count",
            "reply_text",
            "reply_result",
            "satisfaction",
            "satisfaction_comment",
            "external_target",
            "merged_into",
            "duplicate_of",
            "reopened_from",
            "query_code",
            "allowed_transitions",
        ]
        read_only_fields = fields

    def get_caller_name(self, ticket: Ticket) -> str:
        return "" if ticket.caller_confidential else mask_name(ticket.caller_name)

    def get_caller_id_number(self, ticket: Ticket) -> str:
        return "" if ticket.caller_confidential else mask_id_number(ticket.caller_id_number)

    def get_query_code(self, ticket: Ticket) -> str | None:
        # The centre reads it to the caller; departments have no use for it.
        user: User = self.context["request"].user
        return ticket.query_code if (sees_everything(user) or user.role in INTAKE_ROLES) else None

    def get_allowed_transitions(self, ticket: Ticket) -> list[str]:
        """Transitions the table allows from the current state (the actor's rights are checked on use)."""
        return [t.value for t in allowed_from(Status(ticket.status))]


class TicketEventSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()

    class Meta:
        model = TicketEvent
        fields = ["id", "kind", "actor", "from_status", "to_status", "data", "created_at"]
        read_only_fields = fields

    def get_actor(self, event: TicketEvent) -> dict[str, Any] | None:
        if event.actor is None:
            return None
        return {"id": event.actor.id, "name": str(event.actor), "role": event.actor.role}


class ContactSerializer(serializers.Serializer):
    caller_name = serializers.CharField()
    caller_phone = serializers.CharField()
    caller_id_number = serializers.CharField()


class TicketListQuerySerializer(StrictSerializer):
    status = serializers.MultipleChoiceField(choices=Status.choices, required=False)
    hotline_line = serializers.CharField(max_length=16, required=False)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)
    appeal_type = serializers.ChoiceField(choices=AppealType.choices, required=False)
    urgency = serializers.ChoiceField(choices=Urgency.choices, required=False)
    category = serializers.IntegerField(min_value=1, required=False)
    department = serializers.IntegerField(min_value=1, required=False)
    region = serializers.IntegerField(min_value=1, required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)
    overdue = serializers.BooleanField(required=False, allow_null=True, default=None)
    search = serializers.CharField(max_length=100, required=False)
    page = serializers.IntegerField(min_value=1, required=False)
    page_size = serializers.IntegerField(min_value=1, max_value=200, required=False)
    format = serializers.CharField(max_length=10, required=False)


class CategoryTreeSerializer(serializers.ModelSerializer):
    children = CategoryBriefSerializer(many=True, read_only=True)

    class Meta:
        model = Category
        fields = ["id", "name", "children"]


class DepartmentSerializer(serializers.ModelSerializer):
    parent = serializers.IntegerField(source="parent_id", read_only=True, allow_null=True)  # type: ignore[assignment]

    class Meta:
        model = Department
        fields = ["id", "code", "name", "kind", "parent", "accepts_dispatch", "duty_phone"]


class RegionSerializer(serializers.ModelSerializer):
    parent = serializers.IntegerField(source="parent_id", read_only=True, allow_null=True)  # type: ignore[assignment]

    class Meta:
        model = Region
        fields = ["id", "code", "name", "level", "parent"]


class MeSerializer(serializers.ModelSerializer):
    departments = DepartmentBriefSerializer(many=True, read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "full_name", "role", "departments"]
