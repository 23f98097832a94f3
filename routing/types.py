"""What routing takes and gives: the one vocabulary the rules, the recommender, the decision policy, the
evaluation and the agent screen share."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class RoutingInput:
    """A request to route: a ticket being taken (during a call), a ticket waiting for dispatch, or an
    evaluation message. `ticket_id` is None for text that is not a ticket yet."""

    title: str
    content: str
    appeal_type: str = ""
    category_id: int | None = None
    region_id: int | None = None
    location_text: str = ""
    channel: str = ""
    hotline_line: str = ""
    caller_phone: str = ""
    received_at: datetime | None = None
    ticket_id: int | None = None

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.content}".strip()


@dataclass(frozen=True, slots=True)
class Reason:
    """One piece of evidence, machine-readable (`kind`, `ref`) and readable by people (`text`, Chinese):
    kind is "rule", "similar_tickets", "responsibility", "jurisdiction", "classifier" or "returns"."""

    kind: str
    text: str
    ref: str = ""
    weight: float = 0.0


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A department for the ticket, with a confidence in [0, 1] and the reasons for it."""

    department_id: int
    confidence: float
    reasons: tuple[Reason, ...] = field(default_factory=tuple)
    assisting_department_ids: tuple[int, ...] = ()

    @property
    def reason_text(self) -> str:
        return "；".join(reason.text for reason in self.reasons)
