import hashlib
import zipfile
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from telephony import model_download


def make_zip(path: Path, members: dict[str, bytes]) -> str:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return hashlib.sha256(path.read_bytes()).hexdigest()


FAKE_MODEL = {
    "vosk-model-fake-0.1/am/final.mdl": b"model",
    "vosk-model-fake-0.1/conf/model.conf": b"--sample-frequency=16000\n",
    "vosk-model-fake-0.1/README": b"Fake model for tests\n",
}


def test_install_verifies_and_unpacks(tmp_path):
    archive = tmp_path / "fake.zip"
    digest = make_zip(archive, FAKE_MODEL)
    target = model_download.install_archive(archive, sha256=digest.upper(), dest=tmp_path / "models")
    assert target == tmp_path / "models" / "vosk-model-fake-0.1"
    assert (target / "am" / "final.mdl").read_bytes() == b"model"
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["vosk-model-fake-0.1"]


def test_checksum_mismatch_refuses_before_unpacking(tmp_path):
    archive = tmp_path / "fake.zip"
    make_zip(archive, FAKE_MODEL)
    dest = tmp_path / "models"
    with pytest.raises(model_download.ModelArchiveError, match="SHA-256 mismatch"):
        model_download.install_archive(archive, sha256="0" * 64, dest=dest)
    assert not dest.exists()


@pytest.mark.parametrize("evil", ["../evil.txt", "/etc/evil.txt", "model/../../evil.txt", "..\\evil.txt"])
def test_zip_slip_is_rejected(tmp_path, evil):
    archive = tmp_path / "slip.zip"
    digest = make_zip(archive, {**FAKE_MODEL, evil: b"pwned"})
    dest = tmp_path / "a" / "models"
    with pytest.raises(model_download.ModelArchiveError, match="unsafe path"):
        model_download.install_archive(archive, sha256=digest, dest=dest)
    assert not (tmp_path / "a" / "evil.txt").exists()
    assert not (tmp_path / "evil.txt").exists()
    assert list(dest.iterdir()) == []


def test_archive_without_model_layout_is_refused(tmp_path):
    archive = tmp_path / "notmodel.zip"
    digest = make_zip(archive, {"something/readme.txt": b"hi"})
    with pytest.raises(model_download.ModelArchiveError, match="does not hold a Vosk model"):
        model_download.install_archive(archive, sha256=digest, dest=tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []


def test_known_names_carry_their_checksum_and_others_need_one():
    url, digest = model_download.resolve("vosk-model-small-cn-0.22", None)
    assert url == "https://alphacephei.com/vosk/models/vosk-model-small-cn-0.22.zip"
    assert digest == "3af8b0e7e0f835ae9d414ce5df580237a3cfb08d586c9fbbb0f7ff29ad5b14ba"
    assert model_download.KNOWN_MODELS["vosk-model-small-cn-0.22"].size == 43_898_754
    with pytest.raises(model_download.ModelArchiveError, match="--sha256"):
        model_download.resolve("https://example.org/other.zip", None)
    with pytest.raises(model_download.ModelArchiveError, match="differs"):
        model_download.resolve("vosk-model-small-cn-0.22", "1" * 64)


def test_download_mismatch_deletes_temp_file(tmp_path, monkeypatch):
    def fake_download(url, *, to, progress=None):
        to.write_bytes(b"not the published archive")

    monkeypatch.setattr(model_download, "download", fake_download)
    with pytest.raises(model_download.ModelArchiveError, match="SHA-256 mismatch"):
        model_download.download_and_install("vosk-model-small-cn-0.22", sha256=None, dest=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_install_command(tmp_path):
    archive = tmp_path / "fake.zip"
    digest = make_zip(archive, FAKE_MODEL)
    out = StringIO()
    call_command("vosk_model", "install", str(archive), "--sha256", digest, "--dest", str(tmp_path / "m"), stdout=out)
    assert "vosk-model-fake-0.1" in out.getvalue()
    with pytest.raises(CommandError, match="SHA-256 mismatch"):
        call_command("vosk_model", "install", str(archive), "--sha256", "0" * 64, "--dest", str(tmp_path / "n"))


def test_check_command_rejects_a_non_model(tmp_path):
    with pytest.raises(CommandError, match="not a Vosk model"):
        call_command("vosk_model", "check", str(tmp_path))
