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

from hotline.errors import NotFound, NotPermitted
from ticketing.models import User

from .. import selectors, services, voice
from ..models import Call
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


class CtiEventView(APIView):
    """CTI 通话事件：振铃、接听、保持、转接、挂机。振铃时返回来电人的历史工单。"""

    @extend_schema(
        request=s.CtiEventInput,
        responses={200: s.CtiEventResultSerializer, 201: s.CtiEventResultSerializer},
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
            call, created = services.call_ring(
                call_uuid=data["call_id"],
                hotline_line=data["line"],
                caller_number=data["caller"],
                agent_id=data["agent"],
                agent_extension=data["agent_extension"],
            )
            code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
            previous = selectors.caller_previous_tickets(user=actor, phone=call.caller_number)
            body["previous_tickets"] = s.PreviousTicketSerializer(previous, many=True).data
        elif event == s.CtiEvent.ANSWERED:
            call = services.call_answer(call_id=_call(data["call_id"]).id)
        elif event == s.CtiEvent.HELD:
            call = services.call_hold(call_id=_call(data["call_id"]).id)
        elif event == s.CtiEvent.TRANSFERRED:
            call = services.call_transfer(
                call_id=_call(data["call_id"]).id, agent_id=data["agent"], agent_extension=data["agent_extension"]
            )
        else:
            call = services.call_end(call_id=_call(data["call_id"]).id, reason="hungup")
        body["call"] = s.CallSerializer(call).data
        return Response(body, status=code)


class CallPromptView(APIView):
    """让来电人听到一段语音：问候语、工单编号、查询码（逐位读出）或满意度问题。由接听该通话的接入端播放。"""

    @extend_schema(request=s.CallPromptInput, responses={202: s.CallPromptResultSerializer}, summary="向来电人播放语音")
    def post(self, request: Request, call_id: int) -> Response:
        actor = _actor(request)
        serializer = s.CallPromptInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        name = serializer.validated_data["prompt"]
        voice.call_prompt_request(call_id=call_id, actor=actor, prompt=name)
        return Response({"prompt": name, "queued": True}, status=status.HTTP_202_ACCEPTED)


class CallDetailView(APIView):
    """一次通话：会话信息、事件轨迹、转写内容、关联工单与来电人的历史工单（号码脱敏）。"""

    @extend_schema(responses={200: s.CallDetailSerializer}, summary="查看通话")
    def get(self, request: Request, call_id: int) -> Response:
        actor = _actor(request)
        call = selectors.call_detail(call_id=call_id)
        if call is None:
            raise NotFound("通话不存在。")
        context = {
            "ticket_visible": selectors.call_ticket_visible(call=call, user=actor),
            "previous_tickets": selectors.caller_previous_tickets(
                user=actor, phone=call.caller_number, exclude_ticket_id=call.ticket_id
            ),
        }
        return Response(s.CallDetailSerializer(call, context=context).data)
