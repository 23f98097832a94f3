"""Input serializers check shape and types; output serializers turn routing results, decisions and alerts
into JSON. Nothing here writes."""

from typing import Any

from rest_framework import serializers

from hotline.api.serializers import StrictSerializer
from ticketing.models import AppealType, Channel

from ..models import ProactiveAlert, RoutingDecision
from ..policy import RoutingResult
from ..selectors import Duplicate


class DryRunInput(StrictSerializer):
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    content = serializers.CharField(max_length=20000, allow_blank=True, default="")
    appeal_type = serializers.ChoiceField(choices=AppealType.choices, required=False, allow_blank=True, default="")
    category = serializers.IntegerField(required=False, allow_null=True, min_value=1, default=None)
    region = serializers.IntegerField(required=False, allow_null=True, min_value=1, default=None)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False, allow_blank=True, default="")
    hotline_line = serializers.CharField(max_length=16, required=False, allow_blank=True, default="")
    location_text = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    received_at = serializers.DateTimeField(required=False, allow_null=True, default=None)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not (attrs["title"].strip() or attrs["content"].strip()):
            raise serializers.ValidationError({"content": ["请填写标题或内容。"]})
        return attrs


class AcknowledgeInput(StrictSerializer):
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class AlertListQuery(serializers.Serializer):
    open = serializers.BooleanField(required=False, default=False)


def result_json(result: RoutingResult, *, department_names: dict[int, str]) -> dict[str, Any]:
    return {
        "outcome": result.outcome,
        "mode": result.mode,
        "lead_department": result.lead_department_id,
        "lead_department_name": department_names.get(result.lead_department_id or 0, ""),
        "assisting_departments": list(result.assisting_department_ids),
        "confidence": result.confidence,
        "rule": result.rule.rule.id if result.rule else None,
        "urgency": result.urgency,
        "external_target": result.external_target,
        "script": result.script,
        "note": result.note,
        "matches": [m.as_json() for m in result.matches],
        "recommendations": [
            {
                "department_id": r.department_id,
                "department_name": department_names.get(r.department_id, ""),
                "confidence": round(r.confidence, 4),
                "assisting_department_ids": list(r.assisting_department_ids),
                "reasons": [{"kind": x.kind, "text": x.text, "ref": x.ref, "weight": x.weight} for x in r.reasons],
            }
            for r in result.recommendations
        ],
    }


class DecisionSerializer(serializers.ModelSerializer):
    lead_department_name = serializers.CharField(source="lead_department.name", default="", read_only=True)

    class Meta:
        model = RoutingDecision
        fields = [
            "id",
            "ticket",
            "outcome",
            "mode",
            "lead_department",
            "lead_department_name",
            "assisting_department_ids",
            "confidence",
            "rule",
            "rule_name",
            "matches",
            "recommendations",
            "urgency",
            "external_target",
            "script",
            "note",
            "actor",
            "decided_at",
            "latency_ms",
        ]
        read_only_fields = fields


class DuplicateSerializer(serializers.Serializer):
    ticket_id = serializers.IntegerField()
    number = serializers.CharField()
    title = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    kind = serializers.CharField()
    reason = serializers.CharField()
    score = serializers.FloatField()

    def to_representation(self, instance: Duplicate) -> dict[str, Any]:
        return super().to_representation(instance)


class AlertSerializer(serializers.ModelSerializer):
    region_name = serializers.CharField(source="region.name", read_only=True)
    category_name = serializers.SerializerMethodField()
    count = serializers.SerializerMethodField()

    class Meta:
        model = ProactiveAlert
        fields = [
            "id",
            "region",
            "region_name",
            "category",
            "category_name",
            "ticket_ids",
            "count",
            "window_days",
            "threshold",
            "window_start",
            "raised_at",
            "acknowledged_by",
            "acknowledged_at",
            "note",
        ]
        read_only_fields = fields

    def get_category_name(self, alert: ProactiveAlert) -> str:
        return str(alert.category)

    def get_count(self, alert: ProactiveAlert) -> int:
        return len(alert.ticket_ids)
