"""One fetch at a time per campaign, and no request lost while one is under way."""

from __future__ import annotations

import asyncio

import pytest

from desktop.client.fetches import SerialFetches


class RecordingFetch:
    """Answers fetches with the version current when each fetch reads; the test opens a gate."""

    def __init__(self) -> None:
        self.version = 0
        self.reads: list[tuple[int, int]] = []  # (key, version) in the order read
        self.in_flight = 0
        self.most_in_flight = 0
        self.gate = asyncio.Event()
        self.failures = 0

    async def fetch(self, key: int) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            self.reads.append((key, self.version))
            await self.gate.wait()
            if self.failures:
                self.failures -= 1
                raise ConnectionError("server unreachable")
        finally:
            self.in_flight -= 1


async def test_a_request_during_a_fetch_gets_one_more_fetch_after_it() -> None:
    server = RecordingFetch()
    fetches = SerialFetches(server.fetch)
    first = asyncio.create_task(fetches.request(7))
    await asyncio.sleep(0)  # the first fetch has read version 0 and waits
    server.version = 1  # the change that the next requests are about
    for _ in range(5):
        await fetches.request(7)  # returns at once: the running fetch will go again
    server.gate.set()
    await first
    assert server.reads == [(7, 0), (7, 1)]
    assert server.most_in_flight == 1
    assert not fetches.running(7)


async def test_different_campaigns_fetch_side_by_side() -> None:
    server = RecordingFetch()
    fetches = SerialFetches(server.fetch)
    tasks = [asyncio.create_task(fetches.request(key)) for key in (1, 2, 3)]
    await asyncio.sleep(0)
    assert server.in_flight == 3
    server.gate.set()
    await asyncio.gather(*tasks)
    assert sorted(server.reads) == [(1, 0), (2, 0), (3, 0)]


async def test_a_failed_fetch_is_reported_and_the_next_request_fetches_again() -> None:
    server = RecordingFetch()
    server.failures = 1
    server.gate.set()
    fetches = SerialFetches(server.fetch)
    with pytest.raises(ConnectionError):
        await fetches.request(7)
    assert not fetches.running(7)
    await fetches.request(7)
    assert server.reads == [(7, 0), (7, 0)]


async def test_a_failure_with_a_request_waiting_is_superseded_by_the_next_attempt() -> None:
    server = RecordingFetch()
    server.failures = 1
    fetches = SerialFetches(server.fetch)
    first = asyncio.create_task(fetches.request(7))
    await asyncio.sleep(0)
    server.version = 1
    await fetches.request(7)
    server.gate.set()
    await first  # the second attempt succeeded, so no error
    assert server.reads == [(7, 0), (7, 1)]
