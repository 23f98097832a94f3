"""Every channel-layer group name is built here, so subscribers and senders cannot disagree."""


def ticket(ticket_id: int) -> str:
    return f"ticket.{ticket_id}"


def department(department_id: int) -> str:
    return f"department.{department_id}"


def agent(user_id: int) -> str:
    return f"agent.{user_id}"


def supervisors() -> str:
    return "supervisors"


def public_ticket(ticket_id: int) -> str:
    return f"public.ticket.{ticket_id}"
