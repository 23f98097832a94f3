"""Deadline policies every installation starts with; administrators change them in the admin.

Sources (see docs/architecture.md, "Deadlines"): Shandong's published rules give reply within 5 working
days, one extension of at most 10 working days, return within 2 working days; Tianjin's give acceptance
within 15 minutes for danger to life or property and within 1 working day otherwise. Values without a
published source are marked as project defaults.
"""

from django.db import migrations

DEFAULTS = [
    {
        "name": "默认时限",
        "urgency": "",
        "accept_within": 1,
        "accept_unit": "working_days",
        "return_within": 2,
        "return_unit": "working_days",
        "reply_within": 5,
        "reply_unit": "working_days",
        "max_extensions": 1,
        "max_extension_working_days": 10,
        "warning_percent": 80,
        "source": "签收 1 个工作日：天津；答复 5 个工作日、延期 1 次不超过 10 个工作日、退单 2 个工作日：山东",
    },
    {
        "name": "紧急诉求",
        "urgency": "urgent",
        "accept_within": 2,
        "accept_unit": "working_hours",
        "return_within": 4,
        "return_unit": "working_hours",
        "reply_within": 2,
        "reply_unit": "working_days",
        "max_extensions": 1,
        "max_extension_working_days": 5,
        "warning_percent": 75,
        "source": "本项目默认值，请按本地规定调整",
    },
    {
        "name": "特急：危及生命财产安全",
        "urgency": "critical",
        "accept_within": 15,
        "accept_unit": "minutes",
        "return_within": 30,
        "return_unit": "minutes",
        "reply_within": 1440,
        "reply_unit": "minutes",
        "max_extensions": 0,
        "max_extension_working_days": 0,
        "warning_percent": 50,
        "source": "签收 15 分钟：天津（危及生命财产安全）；退单与答复时限为本项目默认值",
    },
]


def create(apps, schema_editor):
    DeadlinePolicy = apps.get_model("ticketing", "DeadlinePolicy")
    for values in DEFAULTS:
        DeadlinePolicy.objects.get_or_create(name=values["name"], defaults=values)


def remove(apps, schema_editor):
    DeadlinePolicy = apps.get_model("ticketing", "DeadlinePolicy")
    DeadlinePolicy.objects.filter(name__in=[v["name"] for v in DEFAULTS]).delete()


class Migration(migrations.Migration):
    dependencies = [("ticketing", "0001_initial")]
    operations = [migrations.RunPython(create, remove)]
