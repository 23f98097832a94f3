"""The routing API. Views validate input, call one service or selector, and serialize; nothing more."""

from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ticketing.models import Department, User

from .. import selectors, services
from ..models import ProactiveAlert
from ..types import RoutingInput
from . import serializers as s


def _actor(request: Request) -> User:
    """The signed-in user; every view here requires authentication (IsAuthenticated by default)."""
    assert isinstance(request.user, User)
    return request.user


def _int(pk: str | None) -> int:
    try:
        return int(pk or "")
    except ValueError:
        raise Http404 from None


def _names(ids: list[int | None]) -> dict[int, str]:
    return dict(Department.objects.filter(id__in=[i for i in ids if i]).values_list("id", "name"))


class DryRunView(APIView):
    """试运行：粘贴一段诉求，看哪些规则命中、原因，以及推荐单位与理由。不写任何数据（规则命中次数也不计）。"""

    @extend_schema(request=s.DryRunInput, responses=dict, summary="派单试运行")
    def post(self, request: Request) -> Response:
        selectors.require_role(_actor(request), selectors.DISPATCH_ROLES, "只有派单员、督办人员和管理员可以试运行。")
        body = s.DryRunInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        inp = RoutingInput(
            title=data["title"],
            content=data["content"],
            appeal_type=data["appeal_type"],
            category_id=data["category"],
            region_id=data["region"],
            location_text=data["location_text"],
            channel=data["channel"],
            hotline_line=data["hotline_line"],
            received_at=data["received_at"],
        )
        result = selectors.route(inp)
        names = _names([result.lead_department_id, *(r.department_id for r in result.recommendations)])
        return Response(s.result_json(result, department_names=names))


class TicketRoutingViewSet(viewsets.ViewSet):
    """工单的智能派单：执行派单决策、查看历次决定、查看疑似重复件。"""

    lookup_value_regex = r"[0-9]+"

    @extend_schema(request=None, responses=s.DecisionSerializer, summary="对待派单工单执行智能派单")
    @action(detail=True, methods=["post"])
    def route(self, request: Request, pk: str | None = None) -> Response:
        decision = services.route_ticket(ticket_id=_int(pk), actor=_actor(request))
        return Response(s.DecisionSerializer(decision).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=s.DecisionSerializer(many=True), summary="工单的派单决定（新的在前）")
    @action(detail=True, methods=["get"])
    def decisions(self, request: Request, pk: str | None = None) -> Response:
        decisions = selectors.decisions_of(user=_actor(request), ticket_id=_int(pk))
        return Response(s.DecisionSerializer(decisions, many=True).data)

    @extend_schema(responses=s.DuplicateSerializer(many=True), summary="疑似重复件（可并单）")
    @action(detail=True, methods=["get"])
    def duplicates(self, request: Request, pk: str | None = None) -> Response:
        user = _actor(request)
        ticket = selectors.ticket_for_routing(user=user, ticket_id=_int(pk))
        found = selectors.duplicates_for(selectors.routing_input(ticket), user=user)
        return Response(s.DuplicateSerializer(found, many=True).data)


class AlertViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """未诉先办预警：列表（?open=true 只看未确认的）与确认。"""

    lookup_value_regex = r"[0-9]+"
    serializer_class = s.AlertSerializer

    def get_queryset(self) -> QuerySet[ProactiveAlert]:
        query = s.AlertListQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return selectors.alert_list(user=_actor(self.request), open_only=query.validated_data["open"])

    @extend_schema(parameters=[s.AlertListQuery], summary="未诉先办预警列表")
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(request=s.AcknowledgeInput, responses=s.AlertSerializer, summary="确认未诉先办预警")
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        body = s.AcknowledgeInput(data=request.data)
        body.is_valid(raise_exception=True)
        alert = services.alert_acknowledge(alert_id=_int(pk), actor=_actor(request), note=body.validated_data["note"])
        alert = selectors.alert_list(user=_actor(request)).get(pk=alert.pk)
        return Response(s.AlertSerializer(alert).data)
