from typing import Any

from rest_framework import serializers

from hotline.api.serializers import StrictSerializer
from ticketing.masking import mask_phone
from ticketing.models import Ticket

from ..models import Call, CallEvent, TranscriptSegment


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
