"""`manage.py run_sip [--listen HOST:PORT] [--agent USERNAME]`: the SIP door, for sites without a PBX."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hotline.errors import ApplicationError
from hotline.realtime import broadcast
from telephony import services, speech
from telephony.sip.server import SipServer, agent_user_id, listen_setting, parse_listen


class Command(BaseCommand):
    help = "Answer SIP calls to the hotline lines directly (PCMU/PCMA over RTP): record, transcribe live, greet."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--listen", help="HOST:PORT to listen on (UDP); default SIP_LISTEN")
        parser.add_argument("--agent", help="username of the agent who takes the calls; default SIP_AGENT")
        parser.add_argument("--no-greeting", action="store_true", help="do not play the greeting prompt")

    def handle(self, *args: Any, **options: Any) -> None:
        if not broadcast.reaches_other_processes():
            self.stderr.write(broadcast.PROCESS_LOCAL_WARNING)
        try:
            host, port = parse_listen(options["listen"]) if options["listen"] else listen_setting()
        except ValueError as exc:
            raise CommandError(f"--listen/SIP_LISTEN: {exc}") from None
        agent = options["agent"] if options["agent"] is not None else str(getattr(settings, "SIP_AGENT", ""))
        if agent:
            self._check_agent(agent)
        warmed: set[int] = set()
        for line in settings.HOTLINE_LINES:
            model = speech.usable_model(line=line)
            if model is None:
                self.stdout.write(f"no speech model for line {line}: calls are recorded and transcribed later")
            elif id(model) not in warmed:
                # A new recognizer's first decode costs 0.5-0.9 s; pay it now, not on the first call.
                warmed.add(id(model))
                self.stdout.write(f"speech model for line {line} warmed in {speech.warm(model):.2f} s")
        if warmed:
            speech.season_in_background()
        asyncio.run(self._serve(host=host, port=port, agent=agent, greeting=not options["no_greeting"]))
        self.stdout.write("sip server stopped")

    def _check_agent(self, username: str) -> None:
        """Fail at start-up, not on the first call, when the configured agent cannot take calls."""
        user_id = agent_user_id(username)
        try:
            if user_id is None or services.agent_for_call(user_id=user_id) is None:
                raise CommandError(f"agent {username!r} does not exist")
        except ApplicationError as exc:
            raise CommandError(f"agent {username!r}: {exc.message}") from None

    async def _serve(self, *, host: str, port: int, agent: str, greeting: bool) -> None:
        server = SipServer(host=host, port=port, agent_username=agent, play_greeting=greeting)
        try:
            await server.start()
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc}") from None
        lines = ", ".join(settings.HOTLINE_LINES)
        self.stdout.write(f"sip listening on {server.host}:{server.port} (UDP) for lines {lines}, agent {agent or '-'}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            # Open calls are ended with reason "server_shutdown" (BYE sent); their audio is already on disk.
            self.stdout.write(f"stopping: {server.active_calls} open call(s) end with reason server_shutdown")
            await server.stop()
