"""The supervisor board (督办看板): today's figures, deadlines now, the last 30 days, the department ranking
and hot topics, read through `ticketing.measures`.

The page is rendered here, tables and figures included, so it reads without a script; `board.js` draws the
charts from the same figures (embedded as JSON) and reloads the panels (`?fragment=1`) when ticket events
arrive on `ws/supervisor/`, at most every few seconds.
"""

import datetime as dt
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from hotline import clock

from .. import measures
from ..calendar import TZ
from ..measures import RATE_LABELS, Board, Counts, Topic
from ..models import Role, User

BOARD_ROLES = frozenset({Role.SUPERVISOR, Role.ADMINISTRATOR})
RANKING_ROWS = 15
HOT_ROWS = 8
DEADLINE_LABELS = {"accept": "签收", "reply": "答复"}


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _change(topic: Topic) -> dict[str, Any]:
    if topic.change > 0:
        text, direction = f"+{topic.change}", "up"
    elif topic.change < 0:
        text, direction = str(topic.change), "down"
    else:
        text, direction = "持平", "flat"
    rate = topic.change_rate
    return {
        "label": topic.label,
        "count": topic.count,
        "previous": topic.previous,
        "change": text,
        "direction": direction,
        "change_rate": percent(rate) if rate is not None else "新增" if topic.count else "—",
        "estimated": topic.estimated,
    }


def _figures(counts: Counts) -> list[dict[str, Any]]:
    rates = counts.rates()
    return [
        {"name": "intake", "label": "今日受理", "value": str(counts.intake), "note": "件"},
        {
            "name": "instant_reply_share",
            "label": RATE_LABELS["instant_reply_share"],
            "value": percent(rates["instant_reply_share"]),
            "note": f"即时答复 {counts.instant_replies} 件",
        },
        {"name": "dispatched", "label": "今日派单", "value": str(counts.dispatched), "note": "件"},
        {
            "name": "response",
            "label": RATE_LABELS["response"],
            "value": percent(rates["response"]),
            "note": f"按时签收 {counts.accepted_on_time} / 应签收 {counts.response_due}",
        },
        {
            "name": "resolution",
            "label": RATE_LABELS["resolution"],
            "value": percent(rates["resolution"]),
            "note": f"已解决 {counts.resolved} / 审核通过答复 {counts.replies_approved}",
        },
        {
            "name": "satisfaction",
            "label": RATE_LABELS["satisfaction"],
            "value": percent(rates["satisfaction"]),
            "note": f"满意、基本满意 {counts.satisfied + counts.fairly_satisfied}"
            f" / 有效回访 {counts.callbacks_answered}",
        },
        {
            "name": "return",
            "label": RATE_LABELS["return"],
            "value": percent(rates["return"]),
            "note": f"退单 {counts.returns} 件",
        },
        {
            "name": "reopen",
            "label": RATE_LABELS["reopen"],
            "value": percent(rates["reopen"]),
            "note": f"重办 {counts.reopened} 件",
        },
    ]


def _chart_rate(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def board_context(board: Board) -> dict[str, Any]:
    """What the template and the script show, every number already formatted or rounded."""
    trend = []
    for row in board.trend.rows:
        rates = row.counts.rates()
        trend.append(
            {
                "day": row.key,
                "label": row.label[5:],
                "intake": row.counts.intake,
                "response": _chart_rate(rates["response"]),
                "resolution": _chart_rate(rates["resolution"]),
                "satisfaction": _chart_rate(rates["satisfaction"]),
                "response_text": percent(rates["response"]),
                "resolution_text": percent(rates["resolution"]),
                "satisfaction_text": percent(rates["satisfaction"]),
            }
        )
    ranking = [
        {
            "rank": row.rank,
            "name": row.name,
            "score": round(row.score, 1) if row.score is not None else None,
            "score_text": f"{row.score:.1f}" if row.score is not None else "—",
            "response": percent(row.rates["response"]),
            "resolution": percent(row.rates["resolution"]),
            "satisfaction": percent(row.rates["satisfaction"]),
            "dispatched": row.counts.dispatched,
        }
        for row in board.ranking[:RANKING_ROWS]
    ]
    hot = board.hot
    categories = [_change(t) for t in hot.categories[:HOT_ROWS]]
    deadlines = board.deadlines
    overdue = [
        {
            "number": t["number"],
            "department": t["department"] or "—",
            "deadline": DEADLINE_LABELS.get(t["deadline"], t["deadline"]),
            "due_at": t["due_at"].astimezone(TZ),
            "overdue_hours": t["overdue_hours"],
        }
        for t in deadlines.most_overdue
    ]
    weights = measures.ranking_weights()
    chart_data = {
        "trend": trend,
        "ranking": [{"label": r["name"], "value": r["score"], "text": r["score_text"]} for r in ranking],
        "categories": [{"label": c["label"], "value": c["count"], "text": f"{c['count']} 件"} for c in categories],
    }
    return {
        "now": board.now.astimezone(TZ),
        "today_label": board.today.period.label(),
        "figures": _figures(board.today.total),
        "deadlines": {
            "accept_warning": deadlines.accept_warning,
            "accept_overdue": deadlines.accept_overdue,
            "reply_warning": deadlines.reply_warning,
            "reply_overdue": deadlines.reply_overdue,
            "overdue": overdue,
        },
        "trend": trend,
        "trend_label": board.trend.period.label(),
        "ranking": ranking,
        "ranking_label": board.ranking_period.label(),
        "slow_at": board.slow_at.astimezone(TZ),
        "slow_minutes": measures.BOARD_SLOW_SECONDS // 60,
        "ranking_more": max(0, len(board.ranking) - RANKING_ROWS),
        "weights": {RATE_LABELS[name]: f"{weights[name]:g}" for name in measures.RANKED_RATES},
        "hot": {
            "label": hot.period.label(),
            "previous_label": hot.previous_period.label(),
            "intake": hot.intake,
            "previous_intake": hot.previous_intake,
            "categories": categories,
            "places": [_change(t) for t in hot.places[:HOT_ROWS]],
            "words": [_change(t) for t in hot.words[:HOT_ROWS]],
        },
        "chart_data": chart_data,
        "export_start": board.ranking_period.first_day.isoformat(),
        "export_end": (board.ranking_period.last_day + dt.timedelta(days=1)).isoformat(),
    }


def _may_see_board(user: User) -> bool:
    return bool(user.is_superuser or user.role in BOARD_ROLES)


@login_required
def board(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    if not _may_see_board(user):
        return render(request, "ticketing/board.html", {"forbidden": True}, status=403)
    context = board_context(measures.board_summary(user=user, now=clock.now()))
    if request.GET.get("fragment") == "1":
        response = render(request, "ticketing/_board_panels.html", context)
    else:
        response = render(request, "ticketing/board.html", context)
    response["Cache-Control"] = "no-store"
    return response
