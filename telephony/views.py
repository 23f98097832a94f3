"""The agent desk (坐席工作台): the call at the agent's seat, its live transcript, the ticket form that fills itself,
the knowledge base's answers, the routing suggestion, and one action each to finish the ticket.

The page renders the shell with what the script needs to start (the agent's state and call, the departments,
categories and regions, the labels); `desk.js` does the rest over `ws/agent/` and the REST API.
"""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from hotline import clock
from ticketing import selectors as ticket_selectors
from ticketing.models import AppealType, ExternalTarget, RegionLevel, Role, Urgency, User
from ticketing.workflow import TERMINAL, Status

from . import selectors
from .api.serializers import AgentStateSerializer
from .models import AgentStateKind, CallStatus

EMERGENCY_TARGETS = ("110", "119", "120", "122")
LEGAL_TARGETS = ("litigation", "arbitration", "petition", "disclosure")
# Routing outcomes as the desk names them.
OUTCOME_LABELS = {
    "auto_dispatched": "可自动派单",
    "preselected": "建议派单",
    "manual": "需人工判断",
    "emergency": "紧急情况",
    "legal_route": "法定途径",
}
ARTICLE_KIND_LABELS = {"guide": "办事指南", "faq": "常见问题", "policy": "政策文件", "notice": "通知公告"}
# Who opens the supervisor board (ticketing.views.board.BOARD_ROLES): the desk links to it for them.
BOARD_ROLES = frozenset({Role.SUPERVISOR, Role.ADMINISTRATOR})
# Guide fields, in the order an answer reads them out.
ARTICLE_ANSWER_FIELDS = {
    "answer": "",
    "conditions": "办理条件",
    "materials": "所需材料",
    "steps": "办理流程",
    "time_limit": "办理时限",
    "fees": "收费标准",
    "service_location": "办理地点与方式",
}
# The region list the form offers: down to streets (communities are many; a draft naming one still shows it).
FORM_REGION_MAX_LEVEL = RegionLevel.STREET


def _labels() -> dict[str, Any]:
    targets = dict(ExternalTarget.choices)
    return {
        "status": dict(Status.choices),
        "appeal_type": dict(AppealType.choices),
        "urgency": dict(Urgency.choices),
        "agent_state": dict(AgentStateKind.choices),
        "call_status": dict(CallStatus.choices),
        "emergency_targets": {key: targets[key] for key in EMERGENCY_TARGETS},
        "legal_targets": {key: targets[key] for key in LEGAL_TARGETS},
        "outcome": OUTCOME_LABELS,
        "article_kind": ARTICLE_KIND_LABELS,
        "article_answer_fields": ARTICLE_ANSWER_FIELDS,
    }


def _reference_data() -> dict[str, Any]:
    departments = ticket_selectors.department_list(accepts_dispatch=True).order_by("code", "id")
    categories = ticket_selectors.category_tree()
    regions = ticket_selectors.region_list().filter(level__lte=FORM_REGION_MAX_LEVEL).order_by("level", "code")
    return {
        "departments": [{"id": d.id, "name": d.name} for d in departments],
        "categories": [
            {"id": c.id, "name": c.name, "children": [{"id": x.id, "name": x.name} for x in c.children.all()]}
            for c in categories
        ],
        "regions": [{"id": r.id, "name": r.name, "level": r.level, "parent": r.parent_id} for r in regions],
    }


@login_required
def desk_page(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    if not selectors.may_drive_calls(user):
        return render(
            request,
            "telephony/desk_forbidden.html",
            {"message": "坐席工作台供热线中心人员（话务员、派单员、督办人员）使用，您的角色不能打开。"},
            status=403,
        )
    state = selectors.agent_state_of(user=user, now=clock.now())
    config = {
        "user": {"id": user.id, "name": str(user)},
        "state": AgentStateSerializer(state).data,
        "wrap_up_seconds": selectors.wrap_up_seconds(),
        "socket_path": "/ws/agent/",
        "terminal_states": sorted(TERMINAL),
        "urls": {
            "my_state": reverse("agent-my-state"),
            "my_tickets": reverse("agent-my-tickets"),
            "live_calls": reverse("calls-live"),
            "calls": "/api/v1/calls/",
            "tickets": reverse("ticket-list"),
            "desk": "/api/v1/desk/tickets/",
            "articles": "/api/v1/knowledge/articles/",
            "suggestions": reverse("kb-suggestions"),
            "routing": "/api/v1/routing/tickets/",
        },
    }
    return render(
        request,
        "telephony/desk.html",
        {
            "config": config,
            "labels": _labels(),
            "reference": _reference_data(),
            "appeal_types": AppealType.choices,
            "urgencies": Urgency.choices,
            # On a call comes from the calls; it is listed (disabled) so the switch can show it.
            "agent_states": AgentStateKind.choices,
            "emergency_targets": [(k, v) for k, v in ExternalTarget.choices if k in EMERGENCY_TARGETS],
            "legal_targets": [(k, v) for k, v in ExternalTarget.choices if k in LEGAL_TARGETS],
            "show_board": user.is_superuser or user.role in BOARD_ROLES,
        },
    )
