"""The WebSocket contract: authentication, authorization, bad frames, replay and resync."""

from __future__ import annotations

import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from pulse_core.protocol import MAX_CLIENT_FRAME_BYTES
from tests.backend import ALICE, CAROL, LiveBackend
from tests.wsclient import WsClient


async def closed_code(ws: WsClient) -> int | None:
    with pytest.raises(ConnectionClosed):
        await ws.recv()
    return ws.connection.close_code


@pytest.mark.parametrize("token", ["", "not-a-token"])
async def test_missing_or_forged_token_is_refused(shared_backend: LiveBackend, token: str) -> None:
    try:
        ws = await WsClient.open(shared_backend.ws_url, token)
    except InvalidStatus as refused:
        assert refused.response.status_code in (401, 403)
        return
    assert await closed_code(ws) == 4401


async def test_expired_token_is_refused(shared_backend: LiveBackend) -> None:
    token = shared_backend.expired_token(ALICE)
    ws = await WsClient.open(shared_backend.ws_url, token)
    assert await closed_code(ws) == 4401


async def test_token_in_query_parameter_is_accepted(shared_backend: LiveBackend) -> None:
    url = f"{shared_backend.ws_url}?access_token={shared_backend.token(ALICE)}"
    async with connect(url) as connection:
        await connection.send(json.dumps({"type": "ping"}))
        assert json.loads(await connection.recv()) == {"type": "pong"}


async def test_other_marketers_topics_are_forbidden(shared_backend: LiveBackend) -> None:
    acme = shared_backend.login(ALICE)["user"]["marketer_id"]
    with shared_backend.client(ALICE) as alice:
        acme_campaign = alice.get("/api/campaigns").json()[0]["id"]
    async with await WsClient.open(shared_backend.ws_url, shared_backend.token(CAROL)) as carol:
        for topic in (f"marketer:{acme}:campaigns", f"campaign:{acme_campaign}", "campaign:999999"):
            await carol.send(type="subscribe", topic=topic, after=None)
            reply = await carol.recv()
            assert reply["type"] == "error"
            assert reply["code"] == "forbidden"
        await carol.send(type="ping")
        assert await carol.recv() == {"type": "pong"}


BAD_FRAMES = [
    ("not json", "bad_request"),
    ("[1, 2]", "bad_request"),
    ('{"type": "dance"}', "bad_request"),
    ('{"topic": "campaign:1"}', "bad_request"),
    ('{"type": "subscribe", "topic": "weather:today"}', "unknown_topic"),
    ('{"type": "subscribe", "topic": 12}', "unknown_topic"),
    ('{"type": "subscribe", "topic": "campaign:1", "after": "yesterday"}', "bad_request"),
    ('{"type": "subscribe", "topic": "campaign:1", "after": -1}', "bad_request"),
    ('{"type": "ping", "pad": "' + "x" * MAX_CLIENT_FRAME_BYTES + '"}', "too_large"),
]


async def test_each_bad_frame_gets_an_error_and_the_connection_stays_open(
    shared_backend: LiveBackend,
) -> None:
    async with await WsClient.open(shared_backend.ws_url, shared_backend.token(ALICE)) as ws:
        for frame, code in BAD_FRAMES:
            await ws.connection.send(frame)
            reply = await ws.recv()
            assert (reply["type"], reply["code"]) == ("error", code), frame[:80]
            assert reply["message"]
            await ws.send(type="ping")
            assert await ws.recv() == {"type": "pong"}


async def test_binary_frame_gets_error(shared_backend: LiveBackend) -> None:
    async with await WsClient.open(shared_backend.ws_url, shared_backend.token(ALICE)) as ws:
        await ws.connection.send(b"\x00\x01")
        reply = await ws.recv()
        assert (reply["type"], reply["code"]) == ("error", "bad_request")


async def test_topic_cap_per_connection(live_backend: LiveBackend) -> None:
    live_backend.settings.max_topics_per_connection = 2
    with live_backend.client(ALICE) as alice:
        ids = [c["id"] for c in alice.get("/api/campaigns").json()][:3]
    async with await WsClient.open(live_backend.ws_url, live_backend.token(ALICE)) as ws:
        for campaign_id in ids[:2]:
            await ws.subscribe(f"campaign:{campaign_id}")
        await ws.send(type="subscribe", topic=f"campaign:{ids[2]}", after=None)
        reply = await ws.recv()
        assert (reply["type"], reply["code"]) == ("error", "bad_request")
        await ws.send(type="unsubscribe", topic=f"campaign:{ids[0]}")
        assert await ws.recv() == {"type": "unsubscribed", "topic": f"campaign:{ids[0]}"}
        await ws.subscribe(f"campaign:{ids[2]}")


async def test_replay_then_resync_when_history_is_gone(shared_backend: LiveBackend) -> None:
    with shared_backend.client(ALICE) as alice:
        campaign = next(c for c in alice.get("/api/campaigns").json() if c["state"] == "active")
        topic = f"campaign:{campaign['id']}"
        history = alice.get("/api/events", params={"topic": topic}).json()
    assert history, "the demo data's active campaign has a stored history"
    latest = history[-1]["seq"]
    async with await WsClient.open(shared_backend.ws_url, shared_backend.token(ALICE)) as ws:
        await ws.send(type="subscribe", topic=topic, after=0)
        assert await ws.recv() == {"type": "subscribed", "topic": topic, "seq": latest}
        replayed = [await ws.recv() for _ in history]
        assert replayed == history
        # A seq beyond the topic's head can only come from another database: reload.
        await ws.send(type="subscribe", topic=topic, after=latest + 100)
        assert (await ws.recv())["type"] == "subscribed"
        assert await ws.recv() == {"type": "resync", "topic": topic, "seq": latest}
