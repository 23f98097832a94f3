"""`manage.py train_router [--data FILE] [--output PATH]`: train the routing classifier and save it.

Without `--data`, from the database: handled tickets (replied, in callback or closed) with a lead department
that still takes dispatch, labelled with that department's code. With `--data`, from a JSON Lines file shaped
like ../shared/data/messages_dev.jsonl: a row's `department` code, or its `label` mapped as in
`evaluate_routing`. The model goes to `ROUTING_MODEL_PATH` (or `--output`); running processes pick it up on
their next recommendation. The last line of the output is a JSON object.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from routing import classifier
from routing.recommend import HANDLED_STATUSES
from ticketing.models import Department, Ticket

from .evaluate_routing import read_messages


class Command(BaseCommand):
    help = "训练派单推荐的文本分类模型（来自已办结工单或 JSON Lines 文件），保存到 ROUTING_MODEL_PATH。"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data", type=Path, help="JSON Lines 文件（title、body，以及 department 或 label）")
        parser.add_argument("--output", type=Path, help="模型文件（默认 ROUTING_MODEL_PATH）")
        parser.add_argument("--limit", type=int, help="最多使用 N 条（最新的工单优先）")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        limit: int | None = options["limit"]
        texts: list[str] = []
        labels: list[str] = []
        if options["data"] is not None:
            messages, skipped = read_messages(options["data"], limit=limit)
            for message in messages:
                texts.append(f"{message.title}\n{message.body}")
                labels.append(message.department_code)
            source = str(options["data"])
            unknown = sorted(
                set(labels) - set(Department.objects.filter(code__in=set(labels)).values_list("code", flat=True))
            )
            if unknown:
                self.stderr.write(f"注意：数据库中还没有这些单位：{', '.join(unknown)}（模型照常保存）。")
        else:
            skipped = []
            tickets = (
                Ticket.objects.filter(
                    status__in=HANDLED_STATUSES,
                    lead_department__isnull=False,
                    lead_department__is_active=True,
                    lead_department__accepts_dispatch=True,
                )
                .order_by("-id")
                .values_list("title", "content", "lead_department__code")
            )
            if limit is not None:
                tickets = tickets[:limit]
            for title, content, code in tickets.iterator(chunk_size=2000):
                texts.append(f"{title}\n{content}")
                labels.append(code)
            source = "database"
        if len(set(labels)) < 2:
            raise CommandError("训练至少需要两个承办单位的已办工单。")
        model = classifier.Model.fit(texts, labels)
        path = options["output"] or Path(settings.ROUTING_MODEL_PATH)
        model.save(path)
        result = {
            "source": source,
            "documents": model.documents,
            "skipped": len(skipped),
            "departments": len(model.labels),
            "features": len(model.log_probs),
            "temperature": model.temperature,
            "path": str(path),
            "seconds": round(time.monotonic() - started, 1),
        }
        self.stdout.write(
            f"已训练：{result['documents']} 条，{result['departments']} 个单位，{result['features']} 个特征，"
            f"温度 {result['temperature']}；保存到 {path}。"
        )
        self.stdout.write(json.dumps(result, ensure_ascii=False))
