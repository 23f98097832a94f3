"""The web process's own deadline sweep (embedded set-up): deadlines are marked without a separate service."""

import time
from datetime import timedelta

import pytest
from django.db import OperationalError, connections

from hotline import clock
from tests.helpers import make_ticket
from ticketing import sla, sla_background
from ticketing.workflow import Status


@pytest.mark.django_db(transaction=True)
def test_a_passed_deadline_is_marked_while_the_background_sweep_runs(org):
    # Dispatched a month ago (the clock is frozen per thread, so the sweep's thread runs on real time).
    with clock.frozen(clock.now() - timedelta(days=30)):
        ticket = make_ticket(org, Status.DISPATCHED)
    thread, stop = sla_background.start(interval=0.05)
    try:
        for _ in range(200):
            try:
                if ticket.events.filter(kind="deadline", data__deadline="accept", data__mark="overdue").exists():
                    break
            except OperationalError:
                pass  # SQLite's shared in-memory test database locks a table while the sweep writes to it
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert ticket.events.filter(kind="deadline", data__deadline="accept", data__mark="overdue").count() == 1
    assert not thread.is_alive()
    connections.close_all()


def test_a_failing_sweep_is_logged_and_the_next_one_runs(monkeypatch, caplog):
    rounds: list[int] = []
    stop = sla_background.threading.Event()

    def flaky(**_kwargs: object) -> sla.SweepReport:
        rounds.append(1)
        if len(rounds) == 1:
            raise RuntimeError("数据库暂时不可用")
        stop.set()
        return sla.SweepReport(warnings=1)

    monkeypatch.setattr(sla_background.sla, "sweep", flaky)
    monkeypatch.setattr(sla_background, "close_old_connections", lambda: None)
    sla_background.sweep_forever(interval=0.01, stop=stop)
    assert len(rounds) == 2
    assert "will retry" in caplog.text
    assert "1 warnings" in caplog.text
