import importlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from ticketing.models import Category, Department, DepartmentKind, Region, RegionLevel, Role, User

from .factories import CategoryFactory, DepartmentFactory, RegionFactory, UserFactory

# One Daphne for the whole session, whichever browser test module asks first, in any app's tests (Twisted's reactor
# runs once per process; a fixture registered in two conftests would start it twice).
from .ticketing.browser import live_server_daphne  # noqa: F401


@dataclass
class Org:
    """A small city: two district trees, bureaus with a sub-unit, and one user per role."""

    city: Region
    district: Region
    street: Region
    other_district: Region
    centre: Department
    bureau: Department
    bureau_unit: Department
    other_bureau: Department
    district_government: Department
    street_office: Department
    category: Category
    agent: User
    other_agent: User
    dispatcher: User
    supervisor: User
    administrator: User
    handler: User
    lead: User
    unit_handler: User
    other_handler: User
    street_handler: User
    district_lead: User

    def handler_for(self, department: Department) -> User:
        return {
            self.bureau.id: self.handler,
            self.bureau_unit.id: self.unit_handler,
            self.other_bureau.id: self.other_handler,
            self.street_office.id: self.street_handler,
            self.district_government.id: self.district_lead,
        }[department.id]


def _restore_default_policies() -> None:
    # Transactional tests flush every table, including rows the data migrations wrote.
    from django.apps import apps

    migration = importlib.import_module("ticketing.migrations.0002_default_deadline_policies")
    migration.create(apps, None)


@pytest.fixture
def org(db) -> Org:  # type: ignore[no-untyped-def]
    _restore_default_policies()
    city = RegionFactory(code="210100", name="沈阳市", level=RegionLevel.CITY)
    district = RegionFactory(code="210102", name="和平区", level=RegionLevel.DISTRICT, parent=city)
    street = RegionFactory(code="210102001", name="太原街街道", level=RegionLevel.STREET, parent=district)
    other_district = RegionFactory(code="210103", name="沈河区", level=RegionLevel.DISTRICT, parent=city)

    centre = DepartmentFactory(code="C", name="市热线中心", kind=DepartmentKind.HOTLINE_CENTRE, accepts_dispatch=False)
    bureau = DepartmentFactory(code="B1", name="市住房和城乡建设局")
    bureau_unit = DepartmentFactory(code="B1-1", name="市住建局物业监管处", parent=bureau)
    other_bureau = DepartmentFactory(code="B2", name="市生态环境局")
    district_government = DepartmentFactory(code="G1", name="和平区人民政府", kind=DepartmentKind.DISTRICT_GOVERNMENT)
    street_office = DepartmentFactory(
        code="G1-S1", name="太原街街道办事处", kind=DepartmentKind.STREET_OFFICE, parent=district_government
    )
    district_government.jurisdiction.set([district])
    street_office.jurisdiction.set([street])

    top = CategoryFactory(name="城乡建设")
    category = CategoryFactory(name="物业管理", parent=top)

    return Org(
        city=city,
        district=district,
        street=street,
        other_district=other_district,
        centre=centre,
        bureau=bureau,
        bureau_unit=bureau_unit,
        other_bureau=other_bureau,
        district_government=district_government,
        street_office=street_office,
        category=category,
        agent=UserFactory(username="agent", role=Role.AGENT, departments=[centre]),
        other_agent=UserFactory(username="agent2", role=Role.AGENT, departments=[centre]),
        dispatcher=UserFactory(username="dispatcher", role=Role.DISPATCHER, departments=[centre]),
        supervisor=UserFactory(username="supervisor", role=Role.SUPERVISOR, departments=[centre]),
        administrator=UserFactory(username="admin", role=Role.ADMINISTRATOR),
        handler=UserFactory(username="handler", role=Role.DEPARTMENT_HANDLER, departments=[bureau]),
        lead=UserFactory(username="lead", role=Role.DEPARTMENT_LEAD, departments=[bureau]),
        unit_handler=UserFactory(username="unit", role=Role.DEPARTMENT_HANDLER, departments=[bureau_unit]),
        other_handler=UserFactory(username="other", role=Role.DEPARTMENT_HANDLER, departments=[other_bureau]),
        street_handler=UserFactory(username="street", role=Role.DEPARTMENT_HANDLER, departments=[street_office]),
        district_lead=UserFactory(
            username="district_lead", role=Role.DEPARTMENT_LEAD, departments=[district_government]
        ),
    )


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def api_as(api):  # type: ignore[no-untyped-def]
    def login(user: User) -> APIClient:
        api.force_authenticate(user=user)
        return api

    return login


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    """Rate limits, lockouts, used challenges and the board's panels live in the cache, which outlives a test;
    ticket numbers repeat from test to test (each starts from an empty database)."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
