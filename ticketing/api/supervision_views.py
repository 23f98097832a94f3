"""Supervision orders and urging. Views validate input, call one service or selector, and serialize."""

from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hotline import clock

from .. import supervision
from ..models import SupervisionOrder, User
from ..selectors import ticket_visible_to
from ..supervision_selectors import SupervisionOrderFilters, supervision_order_detail, supervision_order_list
from . import supervision_serializers as ss
from .serializers import TicketEventSerializer


def _actor(request: Request) -> User:
    """The signed-in user; every view here requires authentication (IsAuthenticated by default)."""
    assert isinstance(request.user, User)
    return request.user


def _id(value: str | int | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        raise Http404 from None


class SupervisionOrderViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """督办单：列表、详情、反馈、结束、提级。发起督办：POST /tickets/{id}/supervision-orders/。"""

    lookup_value_regex = r"[0-9]+"
    serializer_class = ss.SupervisionOrderSerializer

    def get_queryset(self) -> QuerySet[SupervisionOrder]:
        query = ss.SupervisionOrderListQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        filters = SupervisionOrderFilters(
            status=q.get("status"),
            department_id=q.get("department"),
            ticket_id=q.get("ticket"),
            level=q.get("level"),
            overdue=q.get("overdue"),
        )
        return supervision_order_list(user=_actor(self.request), filters=filters, now=clock.now())

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "now": clock.now()}

    def _order_response(self, request: Request, order_id: int, *, status_code: int = 200) -> Response:
        try:
            order = supervision_order_detail(user=_actor(request), order_id=order_id)
        except SupervisionOrder.DoesNotExist:
            raise Http404 from None
        return Response(ss.SupervisionOrderSerializer(order, context={"now": clock.now()}).data, status=status_code)

    @extend_schema(
        parameters=[ss.SupervisionOrderListQuery],
        responses=ss.SupervisionOrderSerializer(many=True),
        summary="督办单列表（督办人员看全部，承办单位看本单位）",
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(responses=ss.SupervisionOrderSerializer, summary="督办单详情")
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return self._order_response(request, _id(pk))

    @extend_schema(
        request=ss.SupervisionOrderRespondInput, responses=ss.SupervisionOrderSerializer, summary="被督办单位反馈"
    )
    @action(detail=True, methods=["post"])
    def respond(self, request: Request, pk: str | None = None) -> Response:
        serializer = ss.SupervisionOrderRespondInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        order = supervision.supervision_order_respond(
            order_id=_id(pk), actor=_actor(request), **serializer.validated_data
        )
        return self._order_response(request, order.id)

    @extend_schema(request=ss.SupervisionOrderCloseInput, responses=ss.SupervisionOrderSerializer, summary="结束督办")
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str | None = None) -> Response:
        serializer = ss.SupervisionOrderCloseInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        order = supervision.supervision_order_close(
            order_id=_id(pk), actor=_actor(request), **serializer.validated_data
        )
        return self._order_response(request, order.id)

    @extend_schema(
        request=ss.SupervisionOrderEscalateInput, responses=ss.SupervisionOrderSerializer, summary="提级督办"
    )
    @action(detail=True, methods=["post"])
    def escalate(self, request: Request, pk: str | None = None) -> Response:
        serializer = ss.SupervisionOrderEscalateInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        order = supervision.supervision_order_escalate(
            order_id=_id(pk), actor=_actor(request), **serializer.validated_data
        )
        return self._order_response(request, order.id)


class TicketSupervisionOrdersView(APIView):
    """One ticket's supervision orders, and issuing a new one."""

    @extend_schema(responses=ss.SupervisionOrderSerializer(many=True), summary="工单的督办单")
    def get(self, request: Request, ticket_id: int) -> Response:
        actor = _actor(request)
        if not ticket_visible_to(user=actor).filter(pk=ticket_id).exists():
            raise Http404
        orders = supervision_order_list(user=actor, filters=SupervisionOrderFilters(ticket_id=ticket_id))
        return Response(ss.SupervisionOrderSerializer(orders, many=True, context={"now": clock.now()}).data)

    @extend_schema(
        request=ss.SupervisionOrderIssueInput, responses={201: ss.SupervisionOrderSerializer}, summary="发起督办"
    )
    def post(self, request: Request, ticket_id: int) -> Response:
        serializer = ss.SupervisionOrderIssueInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        order = supervision.supervision_order_issue(
            ticket_id=ticket_id, actor=_actor(request), **serializer.validated_data
        )
        body = ss.SupervisionOrderSerializer(order, context={"now": clock.now()}).data
        return Response(body, status=status.HTTP_201_CREATED)


class TicketUrgeView(APIView):
    @extend_schema(request=ss.UrgeInput, responses={201: TicketEventSerializer}, summary="催办")
    def post(self, request: Request, ticket_id: int) -> Response:
        serializer = ss.UrgeInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = supervision.ticket_urge(ticket_id=ticket_id, actor=_actor(request), **serializer.validated_data)
        return Response(TicketEventSerializer(event).data, status=status.HTTP_201_CREATED)
