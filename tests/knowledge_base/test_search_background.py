"""The web process's own index keeper (embedded set-up): new tickets become searchable without a service."""

import time

import pytest
from django.db import connections

from knowledge_base import search
from knowledge_base.search import background
from tests.helpers import make_ticket


@pytest.mark.django_db(transaction=True)
def test_tickets_become_searchable_while_the_background_sync_runs(org):
    make_ticket(org, title="小区路灯不亮", content="幸福小区门口的路灯坏了一个月")
    assert not search.search("路灯", doc_type="ticket")
    thread, stop = background.start(interval=0.05)
    try:
        for _ in range(200):
            if search.search("路灯", doc_type="ticket"):
                break
            time.sleep(0.05)
        hits = search.search("路灯", doc_type="ticket")
    finally:
        stop.set()
        thread.join(timeout=10)
    assert hits and hits[0].title == "小区路灯不亮"
    assert not thread.is_alive()
    connections.close_all()


def test_a_failing_round_is_logged_and_the_next_one_runs(monkeypatch, caplog):
    rounds: list[int] = []
    stop = background.threading.Event()

    def flaky() -> search.SyncReport:
        rounds.append(1)
        if len(rounds) == 1:
            raise search.SearchUnavailable("检索服务不可用。")
        stop.set()
        return search.SyncReport()

    monkeypatch.setattr(background, "sync", flaky)
    monkeypatch.setattr(background, "close_old_connections", lambda: None)
    background.sync_forever(interval=0.01, stop=stop)
    assert len(rounds) == 2 and "will retry" in caplog.text
