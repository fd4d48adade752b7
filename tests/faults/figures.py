"""The figures each fault test measures, printed as a table at the end of the run."""

from __future__ import annotations

from dataclasses import dataclass


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
