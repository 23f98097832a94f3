"""The search backends behind one interface, and the choice between them (settings, read at run time)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ..types import Hit, ResolvedFilters, SearchDocument

DATABASE = "database"
ELASTICSEARCH = "elasticsearch"

Progress = Callable[[int], None]


class SearchBackend(Protocol):
    name: str

    def index(self, documents: Sequence[SearchDocument]) -> None:
        """Add or replace these documents."""

    def remove(self, keys: Iterable[tuple[str, int]]) -> None:
        """Drop these (doc_type, doc_id) documents; missing ones are fine."""

    def search(self, text: str, *, filters: ResolvedFilters, limit: int) -> list[Hit]:
        """Ranked hits for `text`. Raises SearchUnavailable when the backend cannot be reached."""

    def rebuild(self, doc_type: str, documents: Iterable[SearchDocument], *, progress: Progress) -> int:
        """Replace every document of `doc_type` with `documents`, never leaving searches without an index.
        Returns how many were indexed; `progress` is called with each batch's size."""

    def count(self, doc_type: str) -> int:
        """Documents of `doc_type` in the index."""


_lock = threading.Lock()
_backends: dict[tuple[str, str], SearchBackend] = {}


def backend_name() -> str:
    """`SEARCH_BACKEND` when set; otherwise Elasticsearch when `ELASTICSEARCH_URL` is set, else the database."""
    name = (settings.SEARCH_BACKEND or "").strip().lower()
    if not name:
        name = ELASTICSEARCH if settings.ELASTICSEARCH_URL else DATABASE
    if name not in (DATABASE, ELASTICSEARCH):
        raise ImproperlyConfigured(f"SEARCH_BACKEND must be {DATABASE!r} or {ELASTICSEARCH!r}, not {name!r}")
    if name == ELASTICSEARCH and not settings.ELASTICSEARCH_URL:
        raise ImproperlyConfigured("SEARCH_BACKEND is 'elasticsearch' but ELASTICSEARCH_URL is not set")
    return name


def get_backend() -> SearchBackend:
    """The configured backend; one instance per process and configuration (the Elasticsearch client keeps
    its connection pool)."""
    name = backend_name()
    key = (name, settings.ELASTICSEARCH_URL if name == ELASTICSEARCH else "")
    backend = _backends.get(key)
    if backend is None:
        with _lock:
            backend = _backends.get(key)
            if backend is None:
                if name == DATABASE:
                    from .database import DatabaseBackend

                    backend = DatabaseBackend()
                else:
                    from .elasticsearch import ElasticsearchBackend

                    backend = ElasticsearchBackend(url=settings.ELASTICSEARCH_URL)
                _backends[key] = backend
    return backend
