"""Realtime events of the ticketing app. Strict schemas: an unknown or missing field is a bug."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict


class TicketChanged(BaseModel):
    """A ticket was created, changed or moved to another state; `event_id` is its ticket event id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["ticket.changed"] = "ticket.changed"
    event_id: int
    ticket_id: int
    number: str
    kind: str
    from_status: str
    to_status: str
    lead_department_id: int | None
    occurred_at: datetime
