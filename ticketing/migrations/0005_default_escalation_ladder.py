"""The escalation ladder every installation starts with; administrators change it in the admin.

Counted in working days after a deadline passes (0: at the deadline). The steps follow the practice of
published local rules (a reminder when acceptance is late; the department's leadership told when a reply
is late, then a supervision order, then a formal notice); the offsets are project defaults, to be set to
the local rules.
"""

from django.db import migrations

LADDER = [
    {"name": "签收超时自动催办", "deadline": "accept", "after_working_days": 0, "action": "urge"},
    {"name": "答复超时通知承办单位负责人", "deadline": "reply", "after_working_days": 0, "action": "notify_lead"},
    {
        "name": "答复超时 1 个工作日生成督办单",
        "deadline": "reply",
        "after_working_days": 1,
        "action": "supervision_order",
    },
    {"name": "答复超时 5 个工作日通报督办", "deadline": "reply", "after_working_days": 5, "action": "formal_notice"},
]


def create(apps, schema_editor):
    EscalationStep = apps.get_model("ticketing", "EscalationStep")
    for values in LADDER:
        EscalationStep.objects.get_or_create(
            deadline=values["deadline"],
            after_working_days=values["after_working_days"],
            action=values["action"],
            defaults={"name": values["name"]},
        )


def remove(apps, schema_editor):
    EscalationStep = apps.get_model("ticketing", "EscalationStep")
    for values in LADDER:
        # A step already taken stays: its escalations are history and refer to it.
        EscalationStep.objects.filter(
            deadline=values["deadline"],
            after_working_days=values["after_working_days"],
            action=values["action"],
            taken__isnull=True,
        ).delete()


class Migration(migrations.Migration):
    dependencies = [("ticketing", "0004_sla_supervision_callbacks")]
    operations = [migrations.RunPython(create, remove)]
