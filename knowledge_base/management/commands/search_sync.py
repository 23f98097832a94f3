"""`manage.py search_sync [--loop SECONDS]`: index what is due: queued article changes (including retries of
earlier failures) and tickets changed since the ticket-event cursor. Several instances may run at once.

With `--loop`, runs until stopped, sleeping SECONDS between rounds; an unreachable index is reported and
tried again next round (nothing is lost: the queue and the cursor are in the database).
"""

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from knowledge_base import search


class Command(BaseCommand):
    help = "同步检索索引：处理待索引的文章变更（含失败重试）和游标之后有变化的工单。--loop 秒数：持续运行。"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--loop", type=float, metavar="SECONDS", help="每轮之间等待的秒数；不给则只运行一轮")

    def handle(self, *args: Any, **options: Any) -> None:
        interval = options["loop"]
        while True:
            report = search.sync()
            if report.indexed or report.tickets or report.failed or report.errors or interval is None:
                line = (
                    f"文章变更 {report.indexed} 条已索引，{report.failed} 条失败待重试；"
                    f"工单 {report.tickets} 张已索引；队列剩余 {report.queued} 条"
                )
                self.stdout.write(line)
                for error in report.errors:
                    self.stderr.write(f"索引失败（稍后重试）：{error}")
            if interval is None:
                return
            time.sleep(interval)
            # A long-running loop drops connections the database closed or that passed CONN_MAX_AGE, as
            # Django does between requests.
            close_old_connections()
