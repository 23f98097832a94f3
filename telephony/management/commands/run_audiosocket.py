"""`manage.py run_audiosocket --host 127.0.0.1 --port 9092`: the Asterisk AudioSocket server."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from hotline.realtime import broadcast
from telephony import speech
from telephony.audiosocket_server import AudioSocketServer, audiosocket_line


class Command(BaseCommand):
    help = "Serve Asterisk AudioSocket calls: record, transcribe live, play the greeting."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=9092)
        parser.add_argument("--no-greeting", action="store_true", help="do not play the greeting prompt")

    def handle(self, *args: Any, **options: Any) -> None:
        if not broadcast.reaches_other_processes():
            self.stderr.write(broadcast.PROCESS_LOCAL_WARNING)
        line = audiosocket_line()
        model = speech.usable_model(line=line)
        if model is None:
            self.stdout.write(f"no speech model for line {line}: calls are recorded and transcribed later")
        else:
            # A new recognizer's first decode costs 0.5-0.9 s; pay it now, not on the first call.
            self.stdout.write(f"speech model warmed in {speech.warm(model):.2f} s")
            speech.season_in_background()
        asyncio.run(self._serve(host=options["host"], port=options["port"], greeting=not options["no_greeting"]))
        self.stdout.write("audiosocket server stopped")

    async def _serve(self, *, host: str, port: int, greeting: bool) -> None:
        server = AudioSocketServer(play_greeting=greeting)
        await server.start(host=host, port=port)
        self.stdout.write(f"audiosocket listening on {host}:{server.port} for line {audiosocket_line()}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            # Open calls are ended with reason "server_shutdown"; their audio is already on disk.
            await server.stop()
