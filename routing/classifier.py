"""A small text classifier for routing: which department handled requests worded like this one.

Multinomial naive Bayes over the words the search index uses (jieba, search mode, stop words dropped) and
the character bigrams of the Chinese text, each counted once per document (binary features are the sturdier
choice for short, repetitive citizen messages). Standard library only: no numpy or scikit-learn in the pins.

Naive Bayes posteriors are far too sure of themselves (every word counts as independent evidence), so the
summed log-likelihoods are divided by a temperature before the softmax. The temperature is fitted on the
training data alone, by cross-validation inside it (log loss over a fixed grid), so probabilities mean what
they say without ever looking at the data that will be evaluated.

Labels are department codes (stable across databases, unlike ids). `manage.py train_router` trains a model
from closed tickets or a JSON Lines file and saves it to `ROUTING_MODEL_PATH`; `current()` loads it lazily
and reloads when the file changes.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from knowledge_base.search import text as search_text

FORMAT_VERSION = 1
ALPHA = 0.5
MIN_DOCUMENT_FREQUENCY = 2
TEMPERATURES = (1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 18.0, 27.0, 40.0, 60.0)
CALIBRATION_FOLDS = 3
# Character bigrams are namespaced so that a bigram and a two-character word are separate features.
BIGRAM_PREFIX = "#"
# The title's features count again under their own names: a citizen's title says what the matter is.
TITLE_PREFIX = "^"
_HAN_RUN = re.compile(r"[\u4e00-\u9fff]+")


def _plain_features(text: str) -> set[str]:
    found = set(search_text.index_words(text))
    for run in _HAN_RUN.findall(text):
        found.update(BIGRAM_PREFIX + run[i : i + 2] for i in range(len(run) - 1))
    return found


def features(text: str) -> set[str]:
    """The features of a request's text (its first line is the title): the index words and the bigrams of
    its Chinese characters, and those of the title once more, marked."""
    title = text.split("\n", 1)[0]
    return _plain_features(text) | {TITLE_PREFIX + feature for feature in _plain_features(title)}


@dataclass(frozen=True)
class Prediction:
    label: str
    probability: float
    terms: tuple[str, ...]


class Model:
    """A trained model: per-class log priors and per-feature log probabilities (absent features use the
    class's smoothed log probability of an unseen feature)."""

    def __init__(
        self,
        *,
        labels: Sequence[str],
        log_priors: Sequence[float],
        log_probs: dict[str, list[float]],
        unseen: Sequence[float],
        temperature: float,
        documents: int,
    ) -> None:
        self.labels = list(labels)
        self.log_priors = list(log_priors)
        self.log_probs = log_probs
        self.unseen = list(unseen)
        self.temperature = temperature
        self.documents = documents

    # training ---------------------------------------------------------------------------------------------

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Sequence[str], *, seed: int = 0) -> Model:
        if len(texts) != len(labels):
            raise ValueError("texts and labels differ in length")
        if not texts:
            raise ValueError("nothing to train on")
        featured = [features(text) for text in texts]
        temperature = _fit_temperature(featured, list(labels), seed=seed)
        return cls._fit_featured(featured, list(labels), temperature=temperature)

    @classmethod
    def _fit_featured(cls, featured: Sequence[set[str]], labels: Sequence[str], *, temperature: float) -> Model:
        classes = sorted(set(labels))
        index = {label: i for i, label in enumerate(classes)}
        document_frequency: Counter[str] = Counter()
        for found in featured:
            document_frequency.update(found)
        vocabulary = {word for word, count in document_frequency.items() if count >= MIN_DOCUMENT_FREQUENCY}
        counts: dict[str, list[int]] = {word: [0] * len(classes) for word in vocabulary}
        totals = [0] * len(classes)
        class_documents = [0] * len(classes)
        for found, label in zip(featured, labels, strict=True):
            position = index[label]
            class_documents[position] += 1
            for word in found:
                row = counts.get(word)
                if row is not None:
                    row[position] += 1
                    totals[position] += 1
        size = len(vocabulary) + 1
        denominators = [math.log(total + ALPHA * size) for total in totals]
        log_probs = {
            word: [math.log(row[c] + ALPHA) - denominators[c] for c in range(len(classes))]
            for word, row in counts.items()
        }
        unseen = [math.log(ALPHA) - denominators[c] for c in range(len(classes))]
        log_priors = [math.log(n / len(labels)) for n in class_documents]
        return cls(
            labels=classes,
            log_priors=log_priors,
            log_probs=log_probs,
            unseen=unseen,
            temperature=temperature,
            documents=len(labels),
        )

    # prediction -------------------------------------------------------------------------------------------

    def _scores(self, found: set[str]) -> list[float]:
        scores = list(self.log_priors)
        for word in found:
            row = self.log_probs.get(word)
            if row is None:
                continue  # a word never seen in training says nothing about any class
            for c, value in enumerate(row):
                scores[c] += value
        return scores

    def _probabilities(self, scores: Sequence[float], temperature: float) -> list[float]:
        top = max(scores)
        weights = [math.exp((score - top) / temperature) for score in scores]
        total = sum(weights)
        return [weight / total for weight in weights]

    def predict(self, text: str, *, top: int = 3, terms: int = 3) -> list[Prediction]:
        """The `top` most likely labels with their probabilities, each with the words that favour it most
        over the runner-up (or, for the runner-up, over the winner)."""
        found = features(text)
        probabilities = self._probabilities(self._scores(found), self.temperature)
        order = sorted(range(len(self.labels)), key=lambda c: -probabilities[c])
        predictions = []
        for rank, c in enumerate(order[:top]):
            rival = order[1] if rank == 0 and len(order) > 1 else order[0]
            predictions.append(
                Prediction(
                    label=self.labels[c],
                    probability=probabilities[c],
                    terms=self._evidence(found, c, rival, terms) if rival != c else (),
                )
            )
        return predictions

    def _evidence(self, found: set[str], c: int, rival: int, limit: int) -> tuple[str, ...]:
        # Words rather than bigrams: they are what a person reads as a reason.
        margins = [
            (row[c] - row[rival], word)
            for word in found
            if not word.startswith((BIGRAM_PREFIX, TITLE_PREFIX))
            and len(word) > 1
            and (row := self.log_probs.get(word)) is not None
        ]
        margins.sort(key=lambda item: (-item[0], item[1]))
        return tuple(word for margin, word in margins[:limit] if margin > 0)

    # storage ----------------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, object]:
        return {
            "version": FORMAT_VERSION,
            "kind": "multinomial_naive_bayes",
            "labels": self.labels,
            "log_priors": self.log_priors,
            "unseen": self.unseen,
            "temperature": self.temperature,
            "documents": self.documents,
            "log_probs": {word: [round(v, 5) for v in row] for word, row in sorted(self.log_probs.items())},
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Model:
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"unsupported routing model version {data.get('version')!r}")
        log_probs = data["log_probs"]
        labels = data["labels"]
        log_priors = data["log_priors"]
        unseen = data["unseen"]
        if not (
            isinstance(log_probs, dict)
            and isinstance(labels, list)
            and isinstance(log_priors, list)
            and isinstance(unseen, list)
        ):
            raise ValueError("malformed routing model")
        return cls(
            labels=[str(label) for label in labels],
            log_priors=[float(v) for v in log_priors],
            log_probs={str(word): [float(v) for v in row] for word, row in log_probs.items()},
            unseen=[float(v) for v in unseen],
            temperature=float(str(data["temperature"])),
            documents=int(str(data["documents"])),
        )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
        os.replace(temporary, path)  # readers never see half a file

    @classmethod
    def load(cls, path: Path) -> Model:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))


def _fit_temperature(featured: Sequence[set[str]], labels: list[str], *, seed: int) -> float:
    """The temperature with the lowest log loss on held-out parts of the training data."""
    if len(set(labels)) < 2 or len(labels) < 2 * CALIBRATION_FOLDS:
        return TEMPERATURES[len(TEMPERATURES) // 2]
    order = list(range(len(labels)))
    random.Random(seed).shuffle(order)
    losses = dict.fromkeys(TEMPERATURES, 0.0)
    for fold in range(CALIBRATION_FOLDS):
        held = set(order[fold::CALIBRATION_FOLDS])
        train = [i for i in order if i not in held]
        model = Model._fit_featured([featured[i] for i in train], [labels[i] for i in train], temperature=1.0)
        index = {label: c for c, label in enumerate(model.labels)}
        for i in held:
            scores = model._scores(featured[i])
            truth = index.get(labels[i])
            for temperature in TEMPERATURES:
                probability = model._probabilities(scores, temperature)[truth] if truth is not None else 0.0
                losses[temperature] -= math.log(max(probability, 1e-9))
    return min(TEMPERATURES, key=lambda t: (losses[t], t))


# ---------------------------------------------------------------------------------------------------------
# the process's model

_lock = threading.Lock()
_loaded: tuple[Path, float, Model] | None = None
_override: list[Model | None] = []


def model_path() -> Path:
    return Path(settings.ROUTING_MODEL_PATH)


def current() -> Model | None:
    """The model routing uses: an override in force (evaluation, tests), else the file at
    `ROUTING_MODEL_PATH`, loaded on first use and again when the file changes; None without one."""
    global _loaded
    if _override:
        return _override[-1]
    path = model_path()
    try:
        modified = path.stat().st_mtime
    except OSError:
        return None
    loaded = _loaded
    if loaded is not None and loaded[0] == path and loaded[1] == modified:
        return loaded[2]
    with _lock:
        if _loaded is None or _loaded[0] != path or _loaded[1] != modified:
            _loaded = (path, modified, Model.load(path))
        return _loaded[2]


@contextmanager
def override(model: Model | None) -> Iterator[None]:
    """Route with `model` (None: without a classifier) instead of the saved one, within the block."""
    _override.append(model)
    try:
        yield
    finally:
        _override.pop()
