"""The agents' callback list (回访): pending tasks with the caller's phone masked, the ticket and the reply
to ask about, the due time. Claiming, revealing the number (on the trail), recording the answer and
releasing go through the REST API from `callbacks.js`."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse_lazy

from hotline import clock

from .. import callback_selectors as selectors
from ..masking import mask_name, mask_phone
from ..models import CALLBACK_OPEN, CallbackMethod, CallbackStatus, Satisfaction, User

# The tabs of the page: the queue, the agent's own calls, and everything still open.
VIEWS = {
    "pending": ("待领取", selectors.CallbackFilters(status=[CallbackStatus.PENDING], method=CallbackMethod.AGENT)),
    "mine": ("我的回访", selectors.CallbackFilters(status=[CallbackStatus.CALLING], mine=True)),
    "open": ("全部未完成", selectors.CallbackFilters(status=list(CALLBACK_OPEN))),
}
LIMIT = 200


@login_required(login_url=reverse_lazy("login"))
def callbacks(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    if not selectors.may_do_callbacks(user):
        raise PermissionDenied("只有热线中心人员可以回访。")
    view = request.GET.get("view", "pending")
    if view not in VIEWS:
        view = "pending"
    label, filters = VIEWS[view]
    tasks = list(selectors.callback_task_list(user=user, filters=filters)[: LIMIT + 1])
    now = clock.now()
    rows = [
        {
            "task": task,
            "ticket": task.ticket,
            "phone": "" if task.ticket.caller_confidential else mask_phone(task.ticket.caller_phone),
            "name": "" if task.ticket.caller_confidential else mask_name(task.ticket.caller_name),
            "overdue": bool(task.status in CALLBACK_OPEN and task.due_at and task.due_at < now),
            "mine": task.assigned_to_id == user.id,
        }
        for task in tasks[:LIMIT]
    ]
    context = {
        "rows": rows,
        "truncated": len(tasks) > LIMIT,
        "view": view,
        "views": [(key, name) for key, (name, _filters) in VIEWS.items()],
        "label": label,
        "satisfaction_choices": Satisfaction.choices,
    }
    return render(request, "ticketing/callbacks.html", context)
