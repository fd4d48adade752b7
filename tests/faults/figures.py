"""The figures each fault test measures, printed as a table at the end of the run."""

from __future__ import annotations

from dataclasses import dataclass

from tests.faults.clients import Delivery


@dataclass
class FaultFigures:
    """One row: what was sent, delivered, duplicated and lost, and the time to recover."""

    backend: str
    fault: str
    sent: int
    delivered: int
    duplicated: int
    lost: int
    recover_seconds: float
    note: str = ""


FIGURES: list[FaultFigures] = []


def record(figures: FaultFigures) -> None:
    FIGURES.append(figures)
    print(figures)


def record_delivery(
    backend: str, fault: str, delivery: Delivery, recover_seconds: float, note: str
) -> None:
    """A row for a fault whose units are events delivered to the watching clients."""
    record(
        FaultFigures(
            backend=backend,
            fault=fault,
            sent=delivery.sent,
            delivered=delivery.delivered,
            duplicated=delivery.duplicated,
            lost=delivery.lost,
            recover_seconds=recover_seconds,
            note=note,
        )
    )
