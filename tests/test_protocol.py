"""The WebSocket protocol without sockets: frames both ways, the no-gap-no-duplicate cursor and
the reconnect rule (pulse_core.protocol)."""

from __future__ import annotations

import ast
import json
import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulse_core.names import CloseCode, ErrorCode, EventName, FrameType
from pulse_core.protocol import (
    DELIVER,
    DUPLICATE,
    EVENT_FRAME_PREFIX,
    MAX_CLIENT_FRAME_BYTES,
    PONG_TEXT,
    Backoff,
    BadAddress,
    Closed,
    Error,
    Event,
    FrameError,
    Gap,
    GiveUp,
    Ping,
    Pong,
    Reauthenticate,
    ReconnectPolicy,
    Refused,
    Resync,
    Retry,
    ServerFrame,
    Subscribe,
    Subscribed,
    TopicCursor,
    Unreachable,
    Unsubscribe,
    Unsubscribed,
    encode,
    event_frame,
    parse_client_frame,
    parse_event,
    parse_server_frame,
)
from pulse_core.topics import parse_topic

ROOT = Path(__file__).resolve().parent.parent
TOPIC = "campaign:7"
FAST = settings(max_examples=100, deadline=None)

# ---- frames -------------------------------------------------------------------------------


def test_every_frame_survives_encoding_in_its_direction() -> None:
    for client_frame in (
        Subscribe(parse_topic(TOPIC), after=None),
        Subscribe(parse_topic("marketer:1:campaigns"), after=41),
        Unsubscribe(parse_topic(TOPIC)),
        Ping(),
    ):
        assert parse_client_frame(encode(client_frame)) == client_frame
    server_frames: list[ServerFrame] = [
        Subscribed(TOPIC, 0),
        Unsubscribed(TOPIC),
        Resync(TOPIC, 12),
        Error(ErrorCode.FORBIDDEN, "you may not subscribe", TOPIC),
        Error(ErrorCode.BAD_REQUEST, "not JSON"),
        Pong(),
        Event(TOPIC, 3, EventName.OFFERS_CREATED, 7, "2026-11-30T10:00:01.250Z", count=50),
        Event(
            TOPIC,
            4,
            EventName.CAMPAIGN_UPDATED,
            7,
            "2026-11-30T10:00:02.000Z",
            stats={"pending_offers": 50},
            reason="offers_refreshed",
            actor={"id": 2, "name": "Bob Baker"},
            created=0,
            request_id="5f0c",
        ),
    ]
    for server_frame in server_frames:
        assert parse_server_frame(encode(server_frame)) == server_frame
    assert json.loads(PONG_TEXT) == {"type": "pong"}


def test_event_frames_are_built_once_in_the_documented_shape() -> None:
    text = event_frame(
        topic=TOPIC,
        seq=42,
        event=EventName.OFFERS_CREATED,
        campaign_id=7,
        count=50,
        ts="2026-11-30T10:00:01.250Z",
        stats={"pending_offers": 50},
    )
    assert text == (
        '{"type":"event","topic":"campaign:7","seq":42,"event":"offers_created",'
        '"campaign_id":7,"count":50,"ts":"2026-11-30T10:00:01.250Z","stats":{"pending_offers":50}}'
    )
    parsed = parse_server_frame(text)
    assert isinstance(parsed, Event) and encode(parsed) == text
    assert text.startswith(EVENT_FRAME_PREFIX)
    for other in (Subscribed(TOPIC, 1), Resync(TOPIC, 1), Error(ErrorCode.TOO_LARGE, "x"), Pong()):
        assert not encode(other).startswith(EVENT_FRAME_PREFIX)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("not json", ErrorCode.BAD_REQUEST),
        ("[1, 2]", ErrorCode.BAD_REQUEST),
        ('{"type": "dance"}', ErrorCode.BAD_REQUEST),
        ('{"type": "subscribe", "topic": "campaign:7", "after": -1}', ErrorCode.BAD_REQUEST),
        ('{"type": "subscribe", "topic": "campaign:7", "after": true}', ErrorCode.BAD_REQUEST),
        ('{"type": "subscribe", "topic": "weather"}', ErrorCode.UNKNOWN_TOPIC),
        ("[" * 100_000, ErrorCode.TOO_LARGE),
        ("[" * (MAX_CLIENT_FRAME_BYTES - 1), ErrorCode.BAD_REQUEST),
    ],
)
def test_a_bad_client_frame_names_its_error_code(text: str, code: ErrorCode) -> None:
    with pytest.raises(FrameError) as caught:
        parse_client_frame(text)
    assert caught.value.code is code


def test_a_client_refuses_server_frames_it_cannot_use_and_keeps_unknown_error_codes() -> None:
    for text in (
        '{"type": "subscribe", "topic": "campaign:7"}',  # a client frame
        '{"type": "event", "topic": "campaign:7", "seq": 1, "event": "x"}',  # no campaign_id
        '{"type": "subscribed", "topic": "campaign:7", "seq": "3"}',
        '"event"',
    ):
        with pytest.raises(FrameError):
            parse_server_frame(text)
    newer = parse_server_frame('{"type": "error", "code": "rate_limited", "message": "wait"}')
    assert newer == Error("rate_limited", "wait")
    refused = parse_server_frame(encode(Error(ErrorCode.FORBIDDEN, "no", TOPIC)))
    assert isinstance(refused, Error) and refused.ends_subscription
    assert not Error(ErrorCode.BAD_REQUEST, "too many topics", TOPIC).ends_subscription
    history_item = json.loads(encode(Event(TOPIC, 1, EventName.TARGET_POPULATED, 7, "")))
    assert parse_event(history_item).seq == 1


# ---- the cursor: no gap, no duplicate -----------------------------------------------------


def test_cursor_says_deliver_duplicate_or_gap() -> None:
    cursor = TopicCursor()
    assert cursor.on_event(5) is DELIVER  # the first seq, when the position is not known
    steps = [cursor.on_event(seq) for seq in (6, 6, 5, 7)]
    assert steps == [DELIVER, DUPLICATE, DUPLICATE, DELIVER]
    gap = cursor.check(11)
    assert gap == Gap(8, 10) and (gap.after, gap.count) == (7, 3)
    assert cursor.seq == 7  # `check` never moves
    cursor.advance(3)
    assert cursor.seq == 7  # nor does `advance` backwards
    assert cursor.on_event(11) == Gap(8, 10) and cursor.seq == 11
    cursor.reset(2)  # resync: carry on after the server's seq, whatever came before
    assert cursor.check(3) is DELIVER and cursor.check(2) is DUPLICATE


@FAST
@given(st.one_of(st.none(), st.integers(0, 20)), st.lists(st.integers(1, 30), max_size=30))
def test_on_event_is_check_then_advance_unless_duplicate(
    start: int | None, seqs: list[int]
) -> None:
    cursor, model = TopicCursor(start), TopicCursor(start)
    for seq in seqs:
        expected = model.check(seq)
        if expected is not DUPLICATE:
            model.reset(seq)
        assert cursor.on_event(seq) == expected
        assert cursor.seq == model.seq


def deliveries(draw: st.DrawFn) -> tuple[int, list[int]]:
    """A topic of `total` events and what a relay announced: each seq zero or more times,
    out of order within a small window (two workers' publishes crossing), some never."""
    copies = draw(st.lists(st.sampled_from([0, 1, 1, 1, 2, 3]), min_size=1, max_size=60))
    total = len(copies)
    arrivals = [seq for seq, n in enumerate(copies, start=1) for _ in range(n)]
    rng = random.Random(draw(st.integers(0, 2**32)))
    for i in range(len(arrivals) - 1):
        if rng.random() < 0.3:
            j = min(len(arrivals) - 1, i + rng.randint(1, 4))
            arrivals[i], arrivals[j] = arrivals[j], arrivals[i]
    return total, arrivals


@FAST
@given(st.composite(deliveries)(), st.integers(0, 5))
def test_a_reader_filling_gaps_from_the_log_applies_each_event_once_in_order(
    case: tuple[int, list[int]], start: int
) -> None:
    """The hub's and the client's rule: drop a duplicate, fill a gap from the log, then catch
    up with what the log holds past the cursor: every event exactly once, in order."""
    total, arrivals = case
    start = min(start, total)
    log = list(range(1, total + 1))
    cursor = TopicCursor(start)
    applied: list[int] = []

    def apply(seq: int) -> None:
        assert cursor.check(seq) is DELIVER, (seq, cursor)
        cursor.advance(seq)
        applied.append(seq)

    for seq in arrivals:
        step = cursor.check(seq)
        if step is DUPLICATE:
            continue
        if isinstance(step, Gap):
            for missing in log[step.after : step.after + step.count]:
                apply(missing)
        apply(seq)
    for missing in log[cursor.seq or 0 :]:  # catch up
        apply(missing)
    assert applied == list(range(start + 1, total + 1))


@FAST
@given(st.composite(deliveries)(), st.integers(0, 60))
def test_a_reader_that_cannot_fill_a_gap_resyncs_and_never_goes_back(
    case: tuple[int, list[int]], pruned_upto: int
) -> None:
    """A client that cannot fill a gap (the history is pruned) reports a resync (the owner
    reloads) and goes on from the frame it holds: it never applies a seq twice or out of order,
    and nothing is skipped without a resync."""
    _, arrivals = case
    cursor = TopicCursor(0)
    applied: list[int] = []
    resynced: set[int] = set()
    for seq in arrivals:
        step = cursor.on_event(seq)
        if step is DUPLICATE:
            continue
        if isinstance(step, Gap):
            if step.first <= pruned_upto:
                resynced.update(range(step.first, step.last + 1))
            else:
                applied.extend(range(step.first, step.last + 1))
        applied.append(seq)
    assert applied == sorted(set(applied))
    assert cursor.seq == (applied[-1] if applied else 0)
    assert set(applied) | resynced == set(range(1, cursor.seq + 1))
    assert not set(applied) & resynced
    assert all(seq <= pruned_upto for seq in resynced if seq - 1 not in resynced)


# ---- reconnecting -------------------------------------------------------------------------


def test_close_codes_decide_retry_log_in_again_or_give_up() -> None:
    policy = ReconnectPolicy(Backoff(initial=1.0, factor=2.0, maximum=4.0, jitter=0.0))
    ended = "your password was changed: log in again"
    assert policy.decide(Closed(CloseCode.UNAUTHORIZED, ended)) == Reauthenticate(ended)
    assert policy.decide(Refused(401)) == Reauthenticate("")
    assert policy.decide(Refused(403)) == Reauthenticate("")
    assert policy.decide(BadAddress("ws//x")) == GiveUp("Bad server address: ws//x")
    retries = [
        policy.decide(ending)
        for ending in (
            Closed(CloseCode.SLOW_CONSUMER, "slow consumer"),
            Closed(CloseCode.GOING_AWAY),
            Closed(CloseCode.INTERNAL_ERROR),
            Unreachable("server refused the connection"),
            Refused(502),
        )
    ]
    assert all(isinstance(r, Retry) for r in retries)
    assert [(r.delay, r.attempt) for r in retries if isinstance(r, Retry)] == [
        (1.0, 1),
        (2.0, 2),
        (4.0, 3),
        (4.0, 4),
        (4.0, 5),
    ]
    assert retries[0] == Retry(1.0, 1, "connection closed (code 4408)")
    # A connection that stayed up starts the next outage quick again.
    assert policy.decide(Closed(None), lasted=60.0) == Retry(1.0, 1, "connection lost")


@FAST
@given(st.integers(0, 2**32), st.integers(1, 40))
def test_backoff_delays_are_jittered_below_a_growing_capped_ceiling(seed: int, tries: int) -> None:
    backoff = Backoff(initial=0.5, factor=2.0, maximum=30.0, jitter=0.5, rng=random.Random(seed))
    for attempt in range(tries):
        ceiling = min(30.0, 0.5 * 2.0**attempt)
        assert ceiling / 2 <= backoff.next_delay() <= ceiling


# ---- one place for the protocol's names -------------------------------------------------------

_IO_FREE = {"__future__", "json", "random", "dataclasses", "datetime", "typing", "collections"}


def test_the_protocol_module_does_no_io() -> None:
    for path in (ROOT / "pulse_core" / "protocol").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.startswith("pulse_core.") or name.split(".")[0] in _IO_FREE, (
                    f"{path.name} imports {name}"
                )


def test_frame_type_names_are_the_documented_ones() -> None:
    doc = (ROOT / "docs" / "protocol.md").read_text()
    for frame_type in FrameType:
        assert f'{{"type": "{frame_type}"' in doc, frame_type
    for code in ErrorCode:
        assert f"| `{code}` |" in doc, code
    for close in CloseCode:
        assert f"| {int(close)} |" in doc, close


# Where the protocol's adapters live; test files may spell the wire literally to pin it.
ADAPTERS = ["server", "workers", "pulse_data", "pulse_cli", "desktop", "bench", "scripts"]
ADAPTER_FILES = ["tests/wsclient.py", "tests/faults/clients.py", "tests/desktop/stub_ws.py"]
_FRAME_TYPES = {str(t) for t in FrameType}
_ERROR_CODES = {str(c) for c in ErrorCode}
_CLOSE_CODES = {int(c) for c in CloseCode}
_JSON_TYPE = re.compile(r'"type":\s*"(' + "|".join(sorted(_FRAME_TYPES)) + ')"')


def _literals(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) of each frame type, error code or close code spelled as a literal."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found: list[tuple[int, str]] = []

    def is_frame_type(node: ast.AST | None) -> bool:
        return isinstance(node, ast.Constant) and node.value in _FRAME_TYPES

    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) not in docstrings:
            value = node.value
            if isinstance(value, bool):
                continue
            if isinstance(value, int) and value in _CLOSE_CODES:
                found.append((node.lineno, f"close code {value}"))
            elif isinstance(value, str) and value in _ERROR_CODES:
                found.append((node.lineno, f"error code {value!r}"))
            elif isinstance(value, str | bytes):
                text = value if isinstance(value, str) else value.decode("latin-1")
                if _JSON_TYPE.search(text):
                    found.append((node.lineno, f"frame in JSON text {text[:40]!r}"))
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for operand in operands:
                elements = operand.elts if isinstance(operand, ast.Tuple | ast.Set) else [operand]
                if any(is_frame_type(e) for e in elements):
                    found.append((node.lineno, "frame type compared with a literal"))
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "type" and is_frame_type(value):
                    found.append((node.lineno, "frame built with a literal type"))
        elif isinstance(node, ast.keyword):
            if node.arg == "type" and is_frame_type(node.value):
                found.append((node.value.lineno, "frame built with a literal type"))
        elif isinstance(node, ast.MatchValue) and is_frame_type(node.value):
            found.append((node.lineno, "frame type matched with a literal"))
    return found


def test_frame_types_error_codes_and_close_codes_are_spelled_only_in_pulse_core() -> None:
    paths = [p for name in ADAPTERS for p in sorted((ROOT / name).rglob("*.py"))]
    paths += [ROOT / name for name in ADAPTER_FILES]
    offences = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in paths
        for line, what in _literals(ast.parse(path.read_text(), str(path)))
    ]
    assert offences == [], "use pulse_core.protocol / pulse_core.names instead:\n" + "\n".join(
        offences
    )


def test_the_literal_check_catches_what_it_is_for() -> None:
    source = """
kind = frame["type"]
if kind == "subscribed": pass
send({"type": "subscribe", "topic": t})
send(type="ping")
ws.send('{"type":"ping"}')
if code in ("forbidden", "unknown_topic"): pass
await ws.close(4408)
match kind:
    case "event": pass
"""
    assert sorted(line for line, _ in _literals(ast.parse(source))) == [3, 4, 5, 6, 7, 7, 8, 10]
