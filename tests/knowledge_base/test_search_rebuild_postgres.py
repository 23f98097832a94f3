"""The PostgreSQL rebuild outside a transaction: a writer thread deletes and COPYs on a connection of its own
while the documents are read on the usual one. All or nothing, whichever side fails."""

import datetime as dt

import pytest
from django.db import connection

from knowledge_base.search.backends.database import DatabaseBackend
from knowledge_base.search.models import SearchEntry
from knowledge_base.search.types import DocType, SearchDocument

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the rebuild with a writer connection is PostgreSQL's (set DATABASE_URL); SQLite rebuilds in place",
    ),
    pytest.mark.django_db(transaction=True),
]

NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


def document(n: int, text: str = "幸福里小区停水三天了") -> SearchDocument:
    return SearchDocument(
        doc_type=DocType.ARTICLE,
        doc_id=n,
        title=f"停水问题 {n}",
        text=text,
        kind="faq",
        audience="public",
        status="published",
        updated_at=NOW,
    )


def stored() -> set[int]:
    return set(SearchEntry.objects.filter(doc_type=DocType.ARTICLE).values_list("doc_id", flat=True))


def rebuild(documents) -> int:
    done: list[int] = []
    count = DatabaseBackend().rebuild(DocType.ARTICLE, documents, progress=done.append)
    assert sum(done) == count
    return count


def test_a_rebuild_replaces_every_entry_and_is_searchable_at_once(monkeypatch):
    from knowledge_base.search.backends import database

    monkeypatch.setattr(database, "COPY_CHUNK", 700)  # several chunks through the queue
    assert not connection.in_atomic_block
    assert rebuild([document(n) for n in range(1, 2001)]) == 2000
    assert stored() == set(range(1, 2001))
    assert rebuild([document(n, "燃气管道漏气") for n in range(5000, 5100)]) == 100
    assert stored() == set(range(5000, 5100))
    entry = SearchEntry.objects.get(doc_type=DocType.ARTICLE, doc_id=5000)
    assert entry.title_terms and "燃气" in entry.text_terms.split()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM knowledge_base_searchentry WHERE search_vector @@ plainto_tsquery('simple', '燃气')"
        )
        assert cursor.fetchone()[0] == 100


def test_a_reading_failure_leaves_the_old_entries(monkeypatch):
    from knowledge_base.search.backends import database

    monkeypatch.setattr(database, "COPY_CHUNK", 100)
    rebuild([document(n) for n in range(1, 51)])

    def broken():
        for n in range(100, 1000):
            if n == 700:
                raise RuntimeError("the database went away while reading")
            yield document(n)

    with pytest.raises(RuntimeError, match="went away"):
        rebuild(broken())
    assert stored() == set(range(1, 51))


def test_a_writing_failure_is_raised_and_leaves_the_old_entries(monkeypatch):
    from knowledge_base.search.backends import database

    monkeypatch.setattr(database, "COPY_CHUNK", 100)
    rebuild([document(n) for n in range(1, 51)])
    # PostgreSQL refuses a NUL character in text; the writer's COPY fails in the middle of the rebuild.
    documents = (
        [document(n) for n in range(100, 600)] + [document(600, "坏\x00数据")] + [document(n) for n in range(601, 1200)]
    )
    with pytest.raises(Exception, match=r"(?i)0x00|nul"):
        rebuild(documents)
    assert stored() == set(range(1, 51))
