"""Requests filed by citizens themselves: no staff author, only what a citizen may set, photos checked."""

import pytest

from hotline.errors import ApplicationError
from tests.helpers import ticket_input
from ticketing import services
from ticketing.models import Ticket, TicketAttachment
from ticketing.services import Upload
from ticketing.workflow import Status

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(autouse=True)
def media(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path


def test_a_citizen_request_waits_for_dispatch_with_no_staff_author(org):
    ticket = services.ticket_create_public(
        data=ticket_input(channel="web"), photos=[Upload(name="现场.png", content_type="image/png", data=PNG)]
    )

    assert ticket.status == Status.PENDING_DISPATCH
    assert ticket.created_by is None
    assert len(ticket.query_code) == 6
    created = ticket.events.get(kind="created")
    assert created.actor is None and created.data["channel"] == "web"
    photo = TicketAttachment.objects.get(ticket=ticket)
    assert (photo.name, photo.uploaded_by, photo.size) == ("现场.png", None, len(PNG))
    assert ticket.events.filter(kind="attachment").count() == 1


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"channel": "phone"}, "invalid_channel"),
        ({"channel": "web", "urgency": "critical"}, "not_public_field"),
        ({"channel": "web", "caller_confidential": True}, "not_public_field"),
        ({"channel": "web", "title": "  "}, "required"),
        ({"channel": "web", "content": "长" * 5001}, "too_long"),
        ({"channel": "web", "category_id": 999999}, "invalid_category"),
    ],
)
def test_what_a_citizen_may_not_set_is_refused_and_nothing_is_stored(org, overrides, code):
    with pytest.raises(ApplicationError) as refused:
        services.ticket_create_public(data=ticket_input(**overrides))
    assert refused.value.code == code
    assert not Ticket.objects.exists()


@pytest.mark.parametrize(
    ("photos", "code"),
    [
        ([Upload(name="a.pdf", content_type="application/pdf", data=b"%PDF-1.4")], "file_type_not_allowed"),
        ([Upload(name="a.png", content_type="image/png", data=b"")], "empty_file"),
        ([Upload(name=f"{i}.png", content_type="image/png", data=PNG) for i in range(4)], "too_many_files"),
    ],
)
def test_bad_photos_refuse_the_whole_request(org, photos, code):
    with pytest.raises(ApplicationError) as refused:
        services.ticket_create_public(data=ticket_input(channel="web"), photos=photos)
    assert refused.value.code == code
    assert not Ticket.objects.exists() and not TicketAttachment.objects.exists()


def test_a_photo_over_the_size_limit_is_refused(org, settings):
    settings.TICKET_ATTACHMENT_MAX_BYTES = 32
    with pytest.raises(ApplicationError) as refused:
        services.ticket_create_public(
            data=ticket_input(channel="web"), photos=[Upload(name="a.png", content_type="image/png", data=PNG)]
        )
    assert refused.value.code == "file_too_large"
