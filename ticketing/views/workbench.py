"""The department workbench (承办单位工作台): the inbox of a department (a lead: of its subtree), updated live
over `ws/departments/<id>/`, and the panel where a ticket is accepted, returned, extended, handed down, answered.

The page renders the shell and the first inbox; `workbench.js` does the rest through the REST API.
"""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from hotline import clock

from .. import services, workbench_selectors
from ..api.handling_serializers import workbench_inbox_data
from ..models import DEPARTMENT_ROLES, AppealType, ReplyResult, Urgency, User
from ..workflow import TERMINAL, Status, Transition

# Trail entries that are not transitions, as the timeline names them.
EVENT_LABELS = {
    "created": "受理",
    "updated": "修改受理内容",
    "contact_viewed": "查看来电人联系方式",
    "merged_in": "有工单并入",
    "note": "内部备注",
    "deadline": "时限提醒",
    "handed_to_unit": "交办下级单位",
    "assisting_reply": "协办意见",
    "attachment": "上传附件",
    # Written by the deadline sweeper and the supervision services.
    "escalation": "超期升级",
    "urged": "催办",
    "supervision_issued": "督办",
    "supervision_responded": "督办反馈",
    "supervision_closed": "督办结束",
    "supervision_escalated": "督办升级",
    "supervision_overdue": "督办超期",
}

# The inbox's counts, named as a department reads them.
COUNT_LABELS = {
    "total": "全部",
    Status.DISPATCHED: "待签收",
    Status.ACCEPTED: "办理中",
    Status.RETURN_PENDING: "退单待审核",
    Status.SUSPENDED: "暂停计时",
    Status.REPLIED: "已答复待审核",
    "warning": "临近时限",
    "overdue": "已超期",
}
ROLE_LABELS = {"lead": "主办", "unit": "承办科室", "assisting": "协办"}
SLA_LABELS = {"ok": "正常", "warning": "预警", "overdue": "超期", "paused": "暂停计时", "none": "不计时"}
DEADLINE_LABELS = {"accept": "签收时限", "reply": "答复时限", "return": "退单时限"}


def _labels() -> dict[str, Any]:
    """Every display name the script needs, from the enumerations, so the page and the API agree."""
    return {
        "status": dict(Status.choices),
        "transition": dict(Transition.choices),
        "event": EVENT_LABELS,
        "count": {str(key): label for key, label in COUNT_LABELS.items()},
        "result": dict(ReplyResult.choices),
        "urgency": dict(Urgency.choices),
        "appeal_type": dict(AppealType.choices),
        "role": ROLE_LABELS,
        "sla": SLA_LABELS,
        "deadline": DEADLINE_LABELS,
    }


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "ticketing/workbench_forbidden.html", {"message": message}, status=403)


@login_required
def workbench(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    if user.role not in DEPARTMENT_ROLES:
        return _forbidden(request, "工作台供承办单位人员使用，您的角色不能打开。")
    departments = workbench_selectors.workbench_departments(user=user)
    if not departments:
        return _forbidden(request, "您还没有加入任何承办单位，请联系系统管理员。")
    wanted = request.GET.get("department")
    if wanted is None:
        department_id = departments[0].id
    elif wanted.isascii() and wanted.isdigit() and int(wanted) in {d.id for d in departments}:
        department_id = int(wanted)
    else:
        raise Http404("单位不存在，或您无权查看其工作台。")
    inbox = workbench_selectors.workbench_inbox(user=user, department_id=department_id, now=clock.now())
    config = {
        "department": department_id,
        "inbox_url": reverse("workbench-inbox", args=[department_id]),
        "ticket_url": reverse("ticket-list"),
        "socket_path": f"/ws/departments/{department_id}/",
        # Where hand-down, assisting parts and attachments are possible (the services' rule) and where a
        # ticket has ended.
        "handling_states": sorted(services.HANDLING_STATES),
        "terminal_states": sorted(TERMINAL),
    }
    return render(
        request,
        "ticketing/workbench.html",
        {
            "department": inbox.department,
            "departments": [(d, "　" * d.depth) for d in departments],
            "inbox": workbench_inbox_data(inbox),
            "labels": _labels(),
            "config": config,
            "results": ReplyResult.choices,
        },
    )
