"""`manage.py search_reindex` and `manage.py search_sync`."""

from io import StringIO

import pytest
from django.core.management import call_command

from hotline import clock
from knowledge_base import search
from knowledge_base.search import indexing
from knowledge_base.search.models import SearchEntry, SearchOutbox
from knowledge_base.search.progress import ProgressBar
from tests.helpers import make_ticket

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def database_backend(settings):  # type: ignore[no-untyped-def]
    settings.SEARCH_BACKEND = "database"
    indexing.resume()


def test_reindex_rebuilds_with_plain_progress_lines_when_not_on_a_terminal(org):
    tickets = [make_ticket(org, title=f"路灯不亮{n}", content="小区路灯晚上不亮。") for n in range(3)]
    out, err = StringIO(), StringIO()

    call_command("search_reindex", "--doc-type", "ticket", stdout=out, stderr=err)

    assert "ticket: 3" in out.getvalue()
    assert "\r" not in err.getvalue()
    assert "ticket (database) [" in err.getvalue() and "3/3" in err.getvalue()
    assert sorted(SearchEntry.objects.values_list("doc_id", flat=True)) == sorted(t.id for t in tickets)
    assert sorted(hit.doc_id for hit in search.search("路灯", doc_type="ticket")) == sorted(t.id for t in tickets)


def test_sync_reports_what_it_indexed(org):
    make_ticket(org, title="公交站台损坏", content="站台顶棚破损。")
    # A change queued for an article that no longer exists: processed (nothing to index) and dequeued.
    SearchOutbox.objects.create(doc_type="article", doc_id=999, created_at=clock.now(), next_attempt_at=clock.now())
    out = StringIO()

    call_command("search_sync", stdout=out)

    assert (
        "文章变更 1 条已索引" in out.getvalue()
        and "工单 1 张已索引" in out.getvalue()
        and "队列剩余 0 条" in out.getvalue()
    )
    assert not SearchOutbox.objects.exists()


def test_the_progress_bar_redraws_in_place_on_a_terminal():
    class Terminal(StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    bar = ProgressBar(label="article", total=4, stream=stream)
    bar.advance(2)
    bar.advance(2)
    bar.close()
    assert stream.getvalue().count("\r") == 3 and "4/4" in stream.getvalue() and stream.getvalue().endswith("\n")
