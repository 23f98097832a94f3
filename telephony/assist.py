"""Agent assistance during a call: the knowledge base's best answers for what the caller has said so far
(`knowledge.suggestion`), and where routing would send it, with emergencies, legal routes and possible
repeats (`routing.suggestion`), pushed to the agent's screen.

Runs after the draft fill, in the call's background task (`pipeline.CallPipeline`), so the audio path never
waits for a search. Suggestions are sent only when the set of top answers changes, so the screen does not
flicker with every segment. The knowledge base decides what the agent may see; a search backend that is down
costs the call its suggestions, nothing else.
"""

import logging

from knowledge_base import search
from knowledge_base import selectors as kb_selectors
from knowledge_base import services as kb_services
from routing import selectors as routing_selectors
from routing import services as routing_services
from routing.types import RoutingInput

from .models import Call

logger = logging.getLogger(__name__)

# The latest words say most about what the caller wants; the opening greeting and small talk say little.
TRANSCRIPT_TAIL_CHARS = 400
SUGGESTIONS = 5


def call_transcript_tail(call: Call) -> str:
    texts = list(call.segments.order_by("index").values_list("text", flat=True))
    return " ".join(texts)[-TRANSCRIPT_TAIL_CHARS:]


def call_assist(*, call_id: int, shown: tuple[int, ...] = ()) -> tuple[int, ...]:
    """Suggest answers for the call's transcript to its agent; returns the article ids now shown."""
    call = Call.objects.select_related("agent").filter(pk=call_id).first()
    if call is None or call.agent is None:
        return shown
    text = call_transcript_tail(call)
    try:
        suggestions = kb_selectors.article_suggestions(text=text, user=call.agent, limit=SUGGESTIONS)
    except search.SearchUnavailable:
        logger.warning("call %s: no answer suggestions, search is unavailable", call.call_uuid)
        return shown
    ids = tuple(suggestion.article_id for suggestion in suggestions)
    if ids and ids != shown:
        kb_services.suggestions_push(
            user=call.agent, suggestions=suggestions, ticket_id=call.ticket_id, call_id=call.call_uuid
        )
    return ids or shown


def _routing_input(call: Call) -> RoutingInput:
    """The call's ticket draft as the agent and the filler have it; before there is one, the transcript."""
    ticket = call.ticket
    if ticket is not None:
        return RoutingInput(
            title=ticket.title,
            content=ticket.content,
            appeal_type=ticket.appeal_type,
            category_id=ticket.category_id,
            region_id=ticket.region_id,
            location_text=ticket.location_text,
            channel=ticket.channel,
            hotline_line=ticket.hotline_line,
            caller_phone=ticket.caller_phone,
            received_at=call.started_at,
            ticket_id=ticket.id,
        )
    return RoutingInput(
        title="",
        content=call_transcript_tail(call),
        channel="phone",
        hotline_line=call.hotline_line,
        caller_phone=call.caller_number,
        received_at=call.started_at,
    )


RouteKey = tuple[str, int | None, str]


def call_route(*, call_id: int, shown: RouteKey | None = None) -> RouteKey | None:
    """Tell the agent where routing would send the call's request (or that it is an emergency or has a
    legal route), when that changes; returns what the screen now shows."""
    call = Call.objects.select_related("agent", "ticket").filter(pk=call_id).first()
    if call is None or call.agent is None:
        return shown
    inp = _routing_input(call)
    if not inp.text:
        return shown
    try:
        result = routing_selectors.route(inp)
    except search.SearchUnavailable:
        logger.warning("call %s: no routing suggestion, search is unavailable", call.call_uuid)
        return shown
    key: RouteKey = (result.outcome, result.lead_department_id, result.external_target)
    if key != shown and (result.lead_department_id is not None or result.external_target):
        routing_services.suggestions_push(inp=inp, agent=call.agent, call_id=call.call_uuid, result=result)
        return key
    return shown
