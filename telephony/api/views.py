"""The CTI API: any PBX drives the agent screen with call events over HTTP (token authentication).

Views validate input, call one service or selector, and serialize; nothing more.
"""

import logging
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hotline.errors import ApplicationError, NotFound, NotPermitted
from ticketing.models import User

from .. import selectors, services
from ..models import Call, Door
from . import serializers as s

logger = logging.getLogger(__name__)


def _actor(request: Request) -> User:
    """The signed-in user (IsAuthenticated by default), who must be hotline centre staff or their PBX."""
    assert isinstance(request.user, User)
    if not selectors.may_drive_calls(request.user):
        raise NotPermitted("只有热线中心人员或其授权的交换机可以上报通话事件。")
    return request.user


def _call(call_uuid: str) -> Call:
    try:
        return selectors.call_by_uuid(call_uuid=call_uuid)
    except Call.DoesNotExist:
        raise NotFound("通话不存在。", extra={"call_id": call_uuid}) from None


def _ringing(data: dict[str, Any], actor: User) -> tuple[Call, bool]:
    """The call a door already created (an audio fork rings first), or a new audio-less CTI call."""
    try:
        return selectors.call_by_uuid(call_uuid=data["call_id"]), False
    except Call.DoesNotExist:
        pass
    agent = None
    if data["agent"] is not None:
        agent = selectors.call_agent(user_id=data["agent"])
        if agent is None:
            raise ApplicationError("坐席不存在或不是热线中心人员。", code="unknown_agent", extra={"field": "agent"})
    try:
        call = services.call_start(
            call_uuid=data["call_id"],
            door=Door.CTI,
            hotline_line=data["line"],
            caller_number=data["caller"],
            agent=agent,
            agent_extension=data["agent_extension"],
            live_transcript=False,
        )
    except ApplicationError as error:
        # The same ringing seen twice at once: the other request created it.
        if error.code != "duplicate_call":
            raise
        return selectors.call_by_uuid(call_uuid=data["call_id"]), False
    return call, True


class CtiEventView(APIView):
    """CTI 通话事件：振铃、接听、保持、转接、挂机。振铃时返回来电人的历史工单。"""

    @extend_schema(
        request=s.CtiEventInput,
        responses={200: s.CtiEventResultSerializer, 201: s.CtiEventResultSerializer, 202: s.CtiEventResultSerializer},
        summary="上报 CTI 通话事件",
    )
    def post(self, request: Request) -> Response:
        actor = _actor(request)
        serializer = s.CtiEventInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        event = data["event"]
        body: dict[str, Any] = {"event": event}
        code: int = status.HTTP_200_OK
        if event == s.CtiEvent.RINGING:
            call, created = _ringing(data, actor)
            code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
            previous = selectors.caller_previous_tickets(user=actor, phone=call.caller_number)
            body["previous_tickets"] = s.PreviousTicketSerializer(previous, many=True).data
        elif event == s.CtiEvent.ANSWERED:
            call = services.call_answer(call_id=_call(data["call_id"]).id)
        elif event == s.CtiEvent.HUNGUP:
            call = services.call_end(call_id=_call(data["call_id"]).id, reason="hungup")
        else:
            # Held and transferred change nothing stored yet; they are accepted so a PBX can send them all.
            call = _call(data["call_id"])
            logger.info("cti: call %s %s (extension %s)", call.call_uuid, event, data["agent_extension"] or "-")
            code = status.HTTP_202_ACCEPTED
        body["call"] = s.CallSerializer(call).data
        return Response(body, status=code)
