"""`manage.py route_pending [--loop SECONDS]`: route the tickets that entered the dispatch queue (created,
submitted, returned) since the cursor over ticket events, as the dispatcher named by ROUTING_ACTOR.

Several instances may run at once (the cursor row is locked while a batch is routed)."""

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

from hotline.errors import ApplicationError
from routing import services


class Command(BaseCommand):
    help = "智能派单：对进入待派单的工单（受理、提交、退单）执行派单决策。--loop 秒数：持续运行。"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--loop", type=float, metavar="SECONDS", help="每轮之间等待的秒数；不给则只运行一轮")

    def handle(self, *args: Any, **options: Any) -> None:
        interval = options["loop"]
        try:
            actor = services.system_actor()
        except ApplicationError as error:
            raise CommandError(error.message) from None
        while True:
            report = services.route_pending(actor=actor)
            if report.routed or report.failed or interval is None:
                outcomes = "，".join(f"{k} {v}" for k, v in sorted((report.outcomes or {}).items()))
                self.stdout.write(
                    f"已处理 {report.routed} 张（{outcomes or '无'}），"
                    f"跳过 {report.skipped} 张，失败 {report.failed} 张"
                )
            if interval is None:
                return
            time.sleep(interval)
            # A long-running loop drops connections the database has closed meanwhile.
            close_old_connections()
