import re
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from hotline.api.serializers import StrictSerializer
from ticketing.masking import mask_phone
from ticketing.models import AppealType, Channel, ExternalTarget, Ticket, Urgency
from ticketing.services import TicketInput

from ..models import AgentStateKind, Call, CallEvent, TranscriptSegment

# The ticket API's rule for a contact number (ticketing.api.serializers.PHONE_PATTERN).
PHONE_PATTERN = re.compile(r"^\+?[0-9][0-9\- ]{3,19}$")


class CtiEvent:
    RINGING = "ringing"
    ANSWERED = "answered"
    HELD = "held"
    TRANSFERRED = "transferred"
    HUNGUP = "hungup"

    ALL = (RINGING, ANSWERED, HELD, TRANSFERRED, HUNGUP)


class CtiEventInput(StrictSerializer):
    """One call event from a PBX. `caller` and `line` are needed at ringing, when the call is created."""

    event = serializers.ChoiceField(choices=CtiEvent.ALL)
    call_id = serializers.CharField(max_length=64)
    caller = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    line = serializers.CharField(max_length=16, required=False, default="")
    agent_extension = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    agent = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["event"] == CtiEvent.RINGING and not attrs["line"]:
            raise serializers.ValidationError({"line": ["振铃事件必须给出热线号码。"]})
        return attrs


class CallSerializer(serializers.ModelSerializer):
    call_id = serializers.CharField(source="call_uuid")
    caller_masked = serializers.SerializerMethodField()

    class Meta:
        model = Call
        fields = [
            "id",
            "call_id",
            "door",
            "status",
            "hotline_line",
            "caller_masked",
            "agent",
            "agent_extension",
            "started_at",
            "answered_at",
            "ended_at",
            "end_reason",
            "transcript_status",
        ]
        read_only_fields = fields

    def get_caller_masked(self, call: Call) -> str:
        return mask_phone(call.caller_number)


class PreviousTicketSerializer(serializers.ModelSerializer):
    caller_phone_masked = serializers.SerializerMethodField()

    class Meta:
        model = Ticket
        fields = ["id", "number", "status", "title", "created_at", "caller_phone_masked"]
        read_only_fields = fields

    def get_caller_phone_masked(self, ticket: Ticket) -> str:
        return mask_phone(ticket.caller_phone)


class CtiEventResultSerializer(serializers.Serializer):
    event = serializers.CharField()
    call = CallSerializer()
    previous_tickets = PreviousTicketSerializer(many=True, required=False)


class CallPromptInput(StrictSerializer):
    """A prompt the agent has the caller hear: the greeting, the ticket's number or query code read digit by
    digit, or the satisfaction question."""

    prompt = serializers.ChoiceField(choices=["greeting", "ticket_number", "query_code", "satisfaction_question"])


class CallPromptResultSerializer(serializers.Serializer):
    prompt = serializers.CharField()
    queued = serializers.BooleanField()


class CallEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = CallEvent
        fields = ["kind", "occurred_at", "agent", "agent_extension", "data"]
        read_only_fields = fields


class SegmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = TranscriptSegment
        fields = ["index", "text", "start_ms", "end_ms"]
        read_only_fields = fields


class CallDetailSerializer(CallSerializer):
    """The agent screen's view of one call: the session, its trail, the transcript so far, the linked ticket
    (when the user may see it) and the caller's earlier tickets (masked)."""

    ticket = serializers.SerializerMethodField()
    events = CallEventSerializer(many=True, read_only=True)
    segments = SegmentSerializer(many=True, read_only=True)
    previous_tickets = serializers.SerializerMethodField()

    class Meta(CallSerializer.Meta):
        fields = [*CallSerializer.Meta.fields, "ticket", "events", "segments", "previous_tickets"]
        read_only_fields = fields

    def get_ticket(self, call: Call) -> int | None:
        return call.ticket_id if self.context.get("ticket_visible") else None

    def get_previous_tickets(self, call: Call) -> list[dict[str, Any]]:
        return list(PreviousTicketSerializer(self.context.get("previous_tickets", []), many=True).data)


# --- agent states, live calls, the desk -------------------------------------------------------------------


class AgentStateInput(StrictSerializer):
    state = serializers.ChoiceField(choices=AgentStateKind.choices)


class AgentStateSerializer(serializers.Serializer):
    """An agent's state now (`selectors.AgentStateView`); `call` is the call they are on or wrapping up."""

    agent_id = serializers.IntegerField()
    agent_name = serializers.CharField()
    state = serializers.CharField()
    state_display = serializers.SerializerMethodField()
    since = serializers.DateTimeField(allow_null=True)
    wrap_up_ends_at = serializers.DateTimeField(allow_null=True)
    call = serializers.SerializerMethodField()

    def get_state_display(self, view: Any) -> str:
        return str(AgentStateKind(view.state).label)

    @extend_schema_field(CallSerializer(allow_null=True))
    def get_call(self, view: Any) -> dict[str, Any] | None:
        return None if view.call is None else dict(CallSerializer(view.call).data)


class LiveCallSerializer(CallSerializer):
    agent_name = serializers.SerializerMethodField()
    status_display = serializers.CharField(source="get_status_display", read_only=True)

    class Meta(CallSerializer.Meta):
        fields = [*CallSerializer.Meta.fields, "agent_name", "status_display"]
        read_only_fields = fields

    def get_agent_name(self, call: Call) -> str:
        return str(call.agent) if call.agent is not None else ""


class AgentTicketSerializer(serializers.ModelSerializer):
    """A row of the agent's own work list; the caller's phone masked (nothing when confidential)."""

    status_display = serializers.CharField(source="get_status_display", read_only=True)
    lead_department = serializers.CharField(source="lead_department.name", default=None, read_only=True)
    caller_phone = serializers.SerializerMethodField()

    class Meta:
        model = Ticket
        fields = [
            "id",
            "number",
            "status",
            "status_display",
            "title",
            "appeal_type",
            "urgency",
            "caller_phone",
            "lead_department",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_caller_phone(self, ticket: Ticket) -> str:
        return "" if ticket.caller_confidential else mask_phone(ticket.caller_phone)


class AgentTicketsQuery(StrictSerializer):
    open = serializers.BooleanField(required=False, default=False)


class CallTicketInput(StrictSerializer):
    """The desk's ticket form for a call that has no ticket yet (saved as a draft linked to the call)."""

    appeal_type = serializers.ChoiceField(choices=AppealType.choices, default=AppealType.INQUIRY)
    urgency = serializers.ChoiceField(choices=Urgency.choices, default=Urgency.NORMAL)
    category = serializers.IntegerField(required=False, allow_null=True, min_value=1, default=None)
    region = serializers.IntegerField(required=False, allow_null=True, min_value=1, default=None)
    title = serializers.CharField(max_length=200)
    content = serializers.CharField(max_length=10000)
    location_text = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    caller_name = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    caller_phone = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    caller_confidential = serializers.BooleanField(required=False, default=False)

    def validate_caller_phone(self, value: str) -> str:
        if value and not PHONE_PATTERN.match(value):
            raise serializers.ValidationError("联系电话格式不正确。")
        return value

    def to_input(self, *, hotline_line: str) -> TicketInput:
        data = self.validated_data
        return TicketInput(
            hotline_line=hotline_line,
            channel=Channel.PHONE,
            appeal_type=data["appeal_type"],
            urgency=data["urgency"],
            title=data["title"],
            content=data["content"],
            category_id=data["category"],
            region_id=data["region"],
            location_text=data["location_text"],
            caller_name=data["caller_name"],
            caller_phone=data["caller_phone"],
            caller_confidential=data["caller_confidential"],
        )


class DeskInstantReplyInput(StrictSerializer):
    reply_text = serializers.CharField(max_length=10000)
    article = serializers.IntegerField(required=False, allow_null=True, min_value=1, default=None)


class DeskDispatchInput(StrictSerializer):
    lead_department = serializers.IntegerField(min_value=1)
    assisting_departments = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, default=list, max_length=20
    )
    note = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class DeskTransferInput(StrictSerializer):
    target = serializers.ChoiceField(choices=ExternalTarget.choices)
    note = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class DeskMergeInput(StrictSerializer):
    into_ticket = serializers.IntegerField(min_value=1)
    note = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class DeskResultSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="ticket.id")
    number = serializers.CharField(source="ticket.number")
    status = serializers.CharField(source="ticket.status")
    status_display = serializers.CharField(source="ticket.get_status_display")
    outcome = serializers.CharField()
    message = serializers.CharField()
