"""Agent assistance during a call: the knowledge base's best answers for what the caller has said so far,
pushed to the agent's screen as `knowledge.suggestion` events.

Runs after the draft fill, in the call's background task (`pipeline.CallPipeline`), so the audio path never
waits for a search. Suggestions are sent only when the set of top answers changes, so the screen does not
flicker with every segment. The knowledge base decides what the agent may see; a search backend that is down
costs the call its suggestions, nothing else.
"""

import logging

from knowledge_base import search
from knowledge_base import selectors as kb_selectors

from . import services
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
        services.call_suggestions_push(call=call, suggestions=suggestions)
    return ids or shown
