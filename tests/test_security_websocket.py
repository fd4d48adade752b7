"""WebSocket isolation, tokens and bad input, beyond test_websocket_protocol.py: forged and
expiring tokens, another marketer's topics, fuzzed frames, oversize frames and floods. Each is
answered with an error frame or a clean close, never a crash or a stuck connection."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.backend import ALICE, CAROL, LiveBackend, parse_metrics
from tests.test_security_rest import bad_tokens
from tests.wsclient import WsClient

REPLIES = {"error", "subscribed", "unsubscribed", "pong"}
ERROR_CODES = {"bad_request", "forbidden", "unknown_topic", "too_large"}


async def refused(backend: LiveBackend, token: str) -> bool:
    try:
        ws = await WsClient.open(backend.ws_url, token)
    except InvalidStatus as refusal:
        return refusal.response.status_code in (401, 403)
    with pytest.raises(ConnectionClosed):
        await ws.recv()
    return ws.connection.close_code == 4401


async def test_every_bad_token_is_refused(shared_backend: LiveBackend) -> None:
    for kind, token in bad_tokens(shared_backend).items():
        assert await refused(shared_backend, token), kind


async def test_a_session_that_expires_while_connected_is_closed(
    shared_backend: LiveBackend,
) -> None:
    user = shared_backend.login(ALICE)["user"]
    token = shared_backend.token_expiring_in(ALICE, 2)
    async with await WsClient.open(shared_backend.ws_url, token) as ws:
        await ws.subscribe(f"marketer:{user['marketer_id']}:campaigns")
        with pytest.raises(ConnectionClosed):
            await ws.recv(timeout=10)
        assert ws.connection.close_code == 4401
        assert "expired" in (ws.connection.close_reason or "")


async def test_another_marketers_topics_give_nothing_away(shared_backend: LiveBackend) -> None:
    acme = shared_backend.login(ALICE)["user"]["marketer_id"]
    with shared_backend.client(ALICE) as alice:
        acme_campaigns = [c["id"] for c in alice.get("/api/campaigns").json()]
    topics = [f"marketer:{acme}:campaigns"] + [f"campaign:{cid}" for cid in acme_campaigns]
    async with await WsClient.open(shared_backend.ws_url, shared_backend.token(CAROL)) as carol:
        for topic in topics:
            await carol.send(type="subscribe", topic=topic, after=0)
            reply = await carol.recv()
            assert (reply["type"], reply["code"], reply["topic"]) == ("error", "forbidden", topic)
            await carol.send(type="unsubscribe", topic=topic)
            assert await carol.recv() == {"type": "unsubscribed", "topic": topic}
        await carol.send(type="ping")
        assert await carol.recv() == {"type": "pong"}


MALFORMED = [
    ('{"type": "subscribe", "topic": "campaign:1", "after": 1.5}', "bad_request"),
    ('{"type": "subscribe", "topic": "campaign:1", "after": true}', "bad_request"),
    ('{"type": "subscribe", "topic": "campaign:1", "after": {"$gt": 0}}', "bad_request"),
    ('{"type": 5}', "bad_request"),
    ('{"type": null}', "bad_request"),
    ('{"type": ["ping"]}', "bad_request"),
    ('{"type": "PING"}', "bad_request"),
    ('{"type": "subscribe"}', "unknown_topic"),
    ('{"type": "subscribe", "topic": ["campaign:1"]}', "unknown_topic"),
    ('{"type": "subscribe", "topic": "campaign:0"}', "unknown_topic"),
    ('{"type": "subscribe", "topic": "campaign:01"}', "unknown_topic"),
    ('{"type": "subscribe", "topic": "campaign:1 "}', "unknown_topic"),
    ('{"type": "subscribe", "topic": "campaign:\\uff11"}', "unknown_topic"),
    ('{"type": "subscribe", "topic": "marketer:1:campaigns:x"}', "unknown_topic"),
    ('{"type": "subscribe", "topic": "campaign:' + "9" * 40 + '"}', "unknown_topic"),
    ('{"type": "unsubscribe", "topic": "*"}', "unknown_topic"),
    ("null", "bad_request"),
    ('"ping"', "bad_request"),
    ("1e999999", "bad_request"),
    ('{"type": "ping"', "bad_request"),
    ("", "bad_request"),
    ("\ufeff{}", "bad_request"),
    ("[" * 1500 + "]" * 1500, "bad_request"),
]


async def test_each_malformed_frame_gets_an_error_and_the_connection_lives_on(
    shared_backend: LiveBackend,
) -> None:
    async with await WsClient.open(shared_backend.ws_url, shared_backend.token(ALICE)) as ws:
        for frame, code in MALFORMED:
            await ws.connection.send(frame)
            reply = await ws.recv()
            assert (reply["type"], reply["code"]) == ("error", code), (frame[:80], reply)
            await ws.send(type="ping")
            assert await ws.recv() == {"type": "pong"}


async def test_after_beyond_any_seq_is_a_resync_not_an_error(shared_backend: LiveBackend) -> None:
    topic = f"marketer:{shared_backend.login(ALICE)['user']['marketer_id']}:campaigns"
    async with await WsClient.open(shared_backend.ws_url, shared_backend.token(ALICE)) as ws:
        await ws.send(type="subscribe", topic=topic, after=10**30)
        assert (await ws.recv())["type"] == "subscribed"
        assert (await ws.recv())["type"] == "resync"


async def test_a_frame_over_the_websocket_limit_is_closed_cleanly(
    shared_backend: LiveBackend,
) -> None:
    async with await WsClient.open(shared_backend.ws_url, shared_backend.token(ALICE)) as ws:
        await ws.connection.send("x" * (256 * 1024))
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.connection.close_code == 1009  # message too big
    # The server is unharmed.
    async with await WsClient.open(shared_backend.ws_url, shared_backend.token(ALICE)) as ws:
        await ws.send(type="ping")
        assert await ws.recv() == {"type": "pong"}


async def _exchange(ws: WsClient, frames: list[str], timeout: float = 30) -> list[dict[str, Any]]:
    """Send every frame while reading; returns the replies (event and resync frames aside)."""

    async def send_all() -> None:
        for frame in frames:
            await ws.connection.send(frame)

    replies: list[dict[str, Any]] = []

    async def read_all() -> None:
        while len(replies) < len(frames):
            reply = await ws.recv(timeout=timeout)
            if reply["type"] not in ("event", "resync"):
                replies.append(reply)

    async with asyncio.timeout(timeout):
        await asyncio.gather(send_all(), read_all())
    return replies


async def test_a_flood_of_subscribe_and_unsubscribe_is_served_in_order(
    shared_backend: LiveBackend,
) -> None:
    topic = f"marketer:{shared_backend.login(ALICE)['user']['marketer_id']}:campaigns"
    rounds = 1000
    frames = [
        json.dumps({"type": kind, "topic": topic, "after": None})
        for _ in range(rounds)
        for kind in ("subscribe", "unsubscribe")
    ]
    async with await WsClient.open(shared_backend.ws_url, shared_backend.token(ALICE)) as ws:
        replies = await _exchange(ws, frames)
        assert [r["type"] for r in replies] == ["subscribed", "unsubscribed"] * rounds
        await ws.send(type="ping")
        assert await ws.recv() == {"type": "pong"}
        async with httpx.AsyncClient() as http:
            metrics = parse_metrics((await http.get(f"{shared_backend.url}/metrics")).text)
        assert metrics["pulse_subscriptions"] == 0


async def test_fuzzed_frames_each_get_one_answer(shared_backend: LiveBackend) -> None:
    """Frames built at random from the protocol's words and wrong values (a fixed seed)."""
    me = shared_backend.login(ALICE)["user"]
    rng = random.Random(4)
    values: list[Any] = [
        None, True, False, 0, -1, 1, 2**63, 1.5, "", "x" * 100, [], {}, [1], {"a": 1},
        "subscribe", "unsubscribe", "ping", f"marketer:{me['marketer_id']}:campaigns",
        "campaign:1", "campaign:999999", "marketer:999:campaigns", "\u0000", "\U0001f600",
    ]  # fmt: skip
    keys = ["type", "topic", "after", "seq", "event", "__proto__"]
    frames: list[str] = []
    for _ in range(400):
        frame = {rng.choice(keys): rng.choice(values) for _ in range(rng.randint(0, 4))}
        if rng.random() < 0.6:
            frame["type"] = rng.choice(["subscribe", "unsubscribe", "ping", "hello"])
        frames.append(json.dumps(frame))
    async with await WsClient.open(shared_backend.ws_url, shared_backend.token(ALICE)) as ws:
        replies = await _exchange(ws, frames)
        assert {r["type"] for r in replies} <= REPLIES
        assert {r["code"] for r in replies if r["type"] == "error"} <= ERROR_CODES
        await ws.send(type="ping")
        assert await ws.recv() == {"type": "pong"}


async def test_a_flood_of_bad_frames_does_not_stick_the_connection(
    shared_backend: LiveBackend,
) -> None:
    frames = ["{" * (i % 50 + 1) for i in range(2000)]
    async with await WsClient.open(shared_backend.ws_url, shared_backend.token(ALICE)) as ws:
        replies = await _exchange(ws, frames)
        assert all((r["type"], r["code"]) == ("error", "bad_request") for r in replies)
        await ws.send(type="ping")
        assert await ws.recv() == {"type": "pong"}
