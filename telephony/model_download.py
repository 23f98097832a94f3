"""Download, verify and unpack official Vosk models.

Policy: nothing is unpacked before its SHA-256 matches a known or explicitly given checksum, and no archive
member may land outside the destination (zip-slip).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class KnownModel:
    name: str
    url: str
    size: int
    sha256: str


KNOWN_MODELS = {
    model.name: model
    for model in (
        KnownModel(
            name="vosk-model-small-cn-0.22",
            url="https://alphacephei.com/vosk/models/vosk-model-small-cn-0.22.zip",
            size=43_898_754,
            sha256="3af8b0e7e0f835ae9d414ce5df580237a3cfb08d586c9fbbb0f7ff29ad5b14ba",
        ),
    )
}


class ModelArchiveError(Exception):
    """The archive cannot be installed: wrong checksum, unsafe member, or not a Vosk model."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    actual = sha256_of(path)
    if actual != expected.strip().lower():
        raise ModelArchiveError(f"SHA-256 mismatch for {path.name}: expected {expected}, got {actual}")


def _safe_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    members = archive.infolist()
    for member in members:
        name = member.filename.replace("\\", "/")
        pure = PurePosixPath(name)
        if pure.is_absolute() or name.startswith("/") or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
            raise ModelArchiveError(f"unsafe path in archive: {member.filename!r}")
    return members


def model_root(path: Path) -> Path | None:
    """The Vosk model directory at `path` or one level below it (official zips hold one top folder)."""
    candidates = [path, *sorted(child for child in path.iterdir() if child.is_dir())] if path.is_dir() else []
    for candidate in candidates:
        if (candidate / "am" / "final.mdl").is_file() and (candidate / "conf").is_dir():
            return candidate
    return None


def install_archive(archive_path: Path, *, sha256: str, dest: Path) -> Path:
    """Verify the archive's checksum, unpack it safely under `dest`, and return the model directory."""
    verify_sha256(archive_path, sha256)
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest))
    try:
        with zipfile.ZipFile(archive_path) as archive:
            members = _safe_members(archive)
            archive.extractall(staging, members=members)
        root = model_root(staging)
        if root is None:
            raise ModelArchiveError(f"{archive_path.name} does not hold a Vosk model (am/final.mdl and conf/)")
        target = dest / (root.name if root != staging else archive_path.name.removesuffix(".zip"))
        if target.exists():
            raise ModelArchiveError(f"{target} already exists; remove it first")
        root.rename(target)
        return target
    except zipfile.BadZipFile as exc:
        raise ModelArchiveError(f"{archive_path.name} is not a zip archive: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def resolve(name_or_url: str, sha256: str | None) -> tuple[str, str]:
    """The URL and expected checksum: known names carry their own; anything else needs an explicit --sha256."""
    known = KNOWN_MODELS.get(name_or_url)
    if known is not None:
        if sha256 and sha256.lower() != known.sha256:
            raise ModelArchiveError(f"--sha256 differs from the published checksum of {known.name}")
        return known.url, known.sha256
    if not sha256:
        raise ModelArchiveError(f"{name_or_url} is not a known model; give its published --sha256")
    if not name_or_url.startswith("https://"):
        raise ModelArchiveError("an unknown model must be given as an https:// URL")
    return name_or_url, sha256


def download(url: str, *, to: Path, progress: Callable[[int, int | None], None] | None = None) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "hotline-vosk-model"})  # noqa: S310  https only
    with urllib.request.urlopen(request, timeout=60) as response, to.open("wb") as out:  # noqa: S310
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1]) as bar:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
                if progress:
                    progress(len(chunk), total)


def download_and_install(name_or_url: str, *, sha256: str | None, dest: Path) -> Path:
    url, expected = resolve(name_or_url, sha256)
    dest.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=".download-", suffix=".zip", dir=dest)
    os.close(handle)
    temp_path = Path(temp_name)
    try:
        download(url, to=temp_path)
        return install_archive(temp_path, sha256=expected, dest=dest)
    finally:
        temp_path.unlink(missing_ok=True)
