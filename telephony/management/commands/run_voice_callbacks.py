"""`manage.py run_voice_callbacks [--once] [--interval 30]`: the automated voice callback caller.

Each round counts calls that never reported back as unanswered, then (within CALLBACK_VOICE_HOURS) marks the
due voice tasks calling and places their calls through Asterisk's AMI (CALLBACK_AMI_URL). The answers come
back through the AudioSocket door (`manage.py run_audiosocket`), which must run too. Several instances may
run at once: each task is taken under a row lock.
"""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any

from asgiref.sync import sync_to_async
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

from hotline.errors import ApplicationError
from telephony import callback


class Command(BaseCommand):
    help = "Place the automated satisfaction callbacks (语音自动回访) through Asterisk AMI."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="one round, then exit")
        parser.add_argument("--interval", type=float, default=30.0, help="seconds between rounds (default 30)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            callback.ami_config()
        except ApplicationError as error:
            raise CommandError(error.message) from None
        if options["interval"] <= 0:
            raise CommandError("--interval 必须大于 0。")
        asyncio.run(self._run(once=options["once"], interval=options["interval"]))

    async def _run(self, *, once: bool, interval: float) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        if not once:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
        try:
            while True:
                report = await callback.dial_round()
                self.stdout.write(json.dumps(callback.describe(report), ensure_ascii=False))
                # The loop runs for days: connections are opened per round, not held.
                await sync_to_async(close_old_connections)()
                if once:
                    return
                try:
                    await asyncio.wait_for(stop.wait(), timeout=interval)
                    return
                except TimeoutError:
                    continue
        finally:
            if not once:
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(signum)
