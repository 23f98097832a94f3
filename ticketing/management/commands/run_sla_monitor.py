"""`manage.py run_sla_monitor [--once] [--interval SECONDS]`: the deadline sweeper (ticketing.sla).

Marks warnings and overdue deadlines, takes the escalation ladder's due steps and marks overdue
supervision orders, every SECONDS (30) until SIGTERM or SIGINT; a stop request ends the sweep at the next
ticket and leaves nothing half done (each ticket's work is one transaction). Several copies may run at
once, and a restarted copy carries on where the database says: there is no other state.
"""

import logging
import signal
import threading
import time
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, close_old_connections

from hotline.realtime import broadcast
from ticketing import sla

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# How often a sleeping loop looks at the stop flag.
TICK_SECONDS = 0.2
LOCAL_LAYER_WARNING = (
    "warning: the channel layer is in-memory (REDIS_URL is not set), so the marks and escalations of this process "
    "reach screens only when they reconnect and catch up from stored events; set REDIS_URL for live delivery"
)


class Command(BaseCommand):
    help = "时限监控：标记预警与超期，按升级阶梯催办、通知负责人、生成督办单和通报，标记超期督办单。"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="只运行一轮，并总是输出统计")
        parser.add_argument(
            "--interval", type=float, default=30.0, metavar="SECONDS", help="每轮之间等待的秒数（默认 30）"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        interval: float = options["interval"]
        if interval <= 0:
            raise CommandError("--interval 必须大于 0。")
        self._stopping = False
        if options["once"]:
            self.stdout.write(sla.sweep().summary())
            return
        if not broadcast.reaches_other_processes():
            self.stderr.write(LOCAL_LAYER_WARNING)
        previous = self._install_handlers()
        try:
            self._loop(interval)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.stdout.write("时限监控已停止。")

    def _install_handlers(self) -> dict[int, Any]:
        # Signals can only be caught on the main thread; elsewhere (an embedding test) the caller stops us.
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {signum: signal.signal(signum, self._request_stop) for signum in STOP_SIGNALS}

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        # Only a flag: a handler runs between any two bytecodes and must not take locks.
        self._stopping = True

    def _loop(self, interval: float) -> None:
        self.stdout.write(f"时限监控已启动，每 {interval:g} 秒一轮。")
        while not self._stopping:
            try:
                report = sla.sweep(should_stop=lambda: self._stopping)
            except DatabaseError:
                # The database may be restarting: nothing is lost, the next round picks up from its state.
                logger.exception("sla: sweep failed; trying again next round")
                self.stderr.write("本轮时限监控失败（数据库不可用？），下一轮重试。")
            else:
                if report.has_work:
                    self.stdout.write(report.summary())
            self._sleep(interval)
            # A long-running loop drops connections the database closed or that passed CONN_MAX_AGE.
            close_old_connections()

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, TICK_SECONDS))
