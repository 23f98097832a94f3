"""Factories for reference data. Tickets are made through services (tests/helpers.py), never by factory,
so every test ticket has a real trail."""

import factory

from ticketing.models import Category, Department, DepartmentKind, Region, RegionLevel, Role, User


class RegionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Region
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"2101{n:08d}")
    name = factory.Sequence(lambda n: f"测试区域{n}")
    level = RegionLevel.STREET
    parent = None


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"D{n:04d}")
    name = factory.Sequence(lambda n: f"测试单位{n}")
    kind = DepartmentKind.CITY_BUREAU
    parent = None
    accepts_dispatch = True


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category

    name = factory.Sequence(lambda n: f"分类{n}")
    parent = None


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    full_name = factory.Sequence(lambda n: f"用户{n}")
    role = Role.AGENT
    password = factory.PostGenerationMethodCall("set_password", "pass-1234")

    @factory.post_generation
    def departments(self, create, extracted, **kwargs):  # type: ignore[no-untyped-def]
        if create and extracted:
            self.departments.set(extracted)
        if create:
            self.save()
