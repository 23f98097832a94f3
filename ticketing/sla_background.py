"""The deadline sweep inside the web process, for the embedded set-up (`make run`).

Production runs `manage.py run_sla_monitor` as its own service (several copies are safe). A one-machine site
would otherwise never mark a deadline unless someone started that command, and with the in-memory channel
layer only events sent from the web process itself reach the screens. With `SLA_SWEEP_IN_PROCESS_SECONDS`
above zero the web process starts one daemon thread that sweeps on that interval; a failed sweep is logged
and tried again next round.
"""

import logging
import threading

from django.db import close_old_connections

from . import sla

logger = logging.getLogger(__name__)


def sweep_forever(*, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        close_old_connections()
        try:
            report = sla.sweep(should_stop=stop.is_set)
        except Exception:
            logger.exception("sla: background sweep failed; will retry")
        else:
            if report.has_work:
                logger.info(
                    "sla: background sweep: %s warnings, %s overdue, %s escalations, %s orders overdue, %s failed",
                    report.warnings,
                    report.overdue,
                    sum(report.escalations.values()),
                    report.orders_overdue,
                    report.failed,
                )
        finally:
            close_old_connections()


def start(*, interval: float) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(
        target=sweep_forever, kwargs={"interval": interval, "stop": stop}, name="sla-sweep", daemon=True
    )
    thread.start()
    return thread, stop
