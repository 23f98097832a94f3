import pytest
from django.urls import reverse

from tests.helpers import make_ticket
from ticketing.workflow import Status

ADMIN_PAGES = [
    "admin:ticketing_region_changelist",
    "admin:ticketing_region_add",
    "admin:ticketing_department_changelist",
    "admin:ticketing_department_add",
    "admin:ticketing_user_changelist",
    "admin:ticketing_user_add",
    "admin:ticketing_category_changelist",
    "admin:ticketing_category_add",
    "admin:ticketing_deadlinepolicy_changelist",
    "admin:ticketing_deadlinepolicy_add",
    "admin:ticketing_calendarday_changelist",
    "admin:ticketing_ticket_changelist",
    "admin:ticketing_extensionrequest_changelist",
    "admin:authtoken_tokenproxy_changelist",
]


@pytest.mark.parametrize("name", ADMIN_PAGES)
def test_admin_pages_render_for_the_administrator(client, org, name):
    org.administrator.is_staff = True
    org.administrator.is_superuser = True
    org.administrator.save()
    client.force_login(org.administrator)
    response = client.get(reverse(name))
    assert response.status_code == 200


def test_ticket_admin_is_read_only_and_hides_caller_data(client, org):
    org.administrator.is_staff = org.administrator.is_superuser = True
    org.administrator.save()
    ticket = make_ticket(org, Status.DISPATCHED)
    client.force_login(org.administrator)
    page = client.get(reverse("admin:ticketing_ticket_change", args=[ticket.id]))
    assert page.status_code == 200
    html = page.content.decode()
    assert ticket.number in html
    assert "13812345678" not in html
    assert 'name="_save"' not in html


def test_home_and_api_docs(client):
    home = client.get("/")
    assert home.status_code == 200
    assert "政务服务便民热线" in home.content.decode()
    docs = client.get(reverse("api-docs"))
    assert docs.status_code == 200
    # Swagger UI is served from the sidecar package, not a CDN.
    assert "cdn" not in docs.content.decode().lower()
    schema = client.get(reverse("api-schema"), {"format": "json"})
    assert schema.status_code == 200


def test_token_auth_for_integrations(client, org):
    from rest_framework.test import APIClient

    response = client.post(reverse("api-token"), {"username": "agent", "password": "pass-1234"})
    assert response.status_code == 200
    token = response.json()["token"]
    pbx = APIClient()
    pbx.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    created = pbx.post(
        "/api/v1/tickets/",
        {"channel": "phone", "appeal_type": "inquiry", "title": "社保卡补办", "content": "请问社保卡丢了怎么补办？"},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["number"].startswith("12345-")
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert wrong.get("/api/v1/tickets/").status_code == 401
