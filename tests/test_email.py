"""Email notifications through a real SMTP server (aiosmtpd), on SQLite and PostgreSQL.

The sender's clock is given to it, so "5 minutes later" and "after the claim ran out" need no
waiting; one test runs the real server and worker and waits for the email of a launch.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr
from sqlalchemy import delete, insert, select

from pulse_core.config import Settings
from pulse_core.names import ActorKind, AuditAction
from pulse_data import outbox
from pulse_data.audit import Actor, command_line_actor
from pulse_data.campaigns import change_state, deposit
from pulse_data.database import Database
from pulse_data.ingest import ingest
from pulse_data.models import LedgerEntry, Offer, OutboxEntry, OutboxState, User, utcnow
from pulse_data.notifications import set_email
from pulse_data.offers import activate_due_offers, create_offers
from pulse_data.population import populate_target
from tests.backend import ALICE, BOB, CAROL, DAVE, LiveBackend, free_port, wait_for
from tests.conftest import TEST_SECRET
from tests.factories import World, make_campaign, make_population, make_world
from workers.mail import Mailer, MailService, SmtpTransport, parse_smtp_url, send_due

SENDER = "Campaign Pulse <pulse@pulse.test>"
LOGIN, PASSWORD = "pulse@pulse.test", "p@ss:word/1"
GAP = timedelta(minutes=5)
ANN, BEN = "ann@pulse.test", "ben@pulse.test"


@dataclass
class Inbox:
    """What the SMTP server accepted; `refuse` holds the codes for the next DATA commands."""

    messages: list[EmailMessage] = field(default_factory=list)
    refuse: list[int] = field(default_factory=list)
    logins: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.refuse:
                code = self.refuse.pop(0)
                return f"{code} {'try again later' if code < 500 else 'no such user'}"
            parsed = message_from_bytes(envelope.content, policy=policy.default)
            self.messages.append(cast(EmailMessage, parsed))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if address in str(m["To"])]

    def authenticate(self, server: Any, session: Any, envelope: Any, how: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            LOGIN.encode(),
            PASSWORD.encode(),
        )
        self.logins += ok
        return AuthResult(success=ok)


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[tuple[Inbox, str]]:
    """A real SMTP server with logins; its URL carries the URL-encoded user and password."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=inbox.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    yield inbox, f"smtp://{quote(LOGIN, safe='')}:{quote(PASSWORD, safe='')}@127.0.0.1:{port}"
    controller.stop()


@pytest.fixture
def inbox(smtp_server: tuple[Inbox, str]) -> Inbox:
    smtp_server[0].messages.clear()
    smtp_server[0].refuse.clear()
    smtp_server[0].logins = 0
    return smtp_server[0]


@pytest.fixture
def mailer(smtp_server: tuple[Inbox, str]) -> Mailer:
    transport = SmtpTransport(parse_smtp_url(smtp_server[1]), timeout=5)
    return Mailer(transport, SENDER, wait=timedelta(0), gap=GAP)


@dataclass(frozen=True)
class Setup:
    world: World
    campaign_id: int
    ann: int  # opted in
    ben: int  # did not


async def _setup(db: Database, *, per_band: int = 1, ann_opts_in: bool = True) -> Setup:
    world = await make_world(db)
    await make_population(db, world, per_band=per_band)
    campaign_id = await make_campaign(db, world, title="Summer Sale")
    async with db.writer() as session:
        ids = []
        for email in (ANN, BEN):
            ids.append(
                (
                    await session.execute(
                        insert(User)
                        .values(marketer_id=world.marketer_id, email=email, name=email[:3].title(),
                                password_hash="-", role="viewer")
                        .returning(User.id)
                    )
                ).scalar_one()
            )  # fmt: skip
        if ann_opts_in:
            await set_email(session, ids[0], True)
        await session.commit()
    return Setup(world, campaign_id, ids[0], ids[1])


async def _archive(db: Database, setup: Setup, campaign_id: int | None = None) -> None:
    await change_state(
        db,
        None,
        setup.world.marketer_id,
        command_line_actor(),
        campaign_id or setup.campaign_id,
        AuditAction.ARCHIVED,
    )


async def _rows(db: Database) -> list[OutboxEntry]:
    async with db.reader() as session:
        return list((await session.scalars(select(OutboxEntry).order_by(OutboxEntry.id))).all())


async def test_one_email_per_campaign_and_user_at_most_every_5_minutes(
    db: Database, inbox: Inbox, mailer: Mailer
) -> None:
    setup = await _setup(db)
    await populate_target(db, None, setup.world.target_id)
    await create_offers(db, None, setup.campaign_id)
    start = utcnow()

    assert (await send_due(db, mailer, start))["sent"] == 1
    (first,) = inbox.messages
    assert first["Subject"] == "Campaign Pulse: “Summer Sale” — target populated, offers created"
    assert ANN in str(first["To"]) and str(first["From"]) == SENDER
    assert inbox.logins == 1  # with the user and password of the URL, decoded
    body = first.get_content()
    assert "Target populated: 3 members" in body and "3 offers created" in body
    assert "turn them off" in body

    await _archive(db, setup)  # within 5 minutes of the first email: waits for the next one
    for minutes in (1, 4):
        await send_due(db, mailer, start + timedelta(minutes=minutes))
    assert len(inbox.messages) == 1
    await send_due(db, mailer, start + GAP + timedelta(seconds=1))
    await send_due(db, mailer, start + GAP * 4)
    assert [m["Subject"] for m in inbox.messages[1:]] == [
        "Campaign Pulse: “Summer Sale” — archived"
    ]
    assert inbox.to(BEN) == []
    assert {row.state for row in await _rows(db)} == {OutboxState.SENT}


async def test_a_sender_that_died_never_sends_an_event_twice(
    db: Database, inbox: Inbox, mailer: Mailer
) -> None:
    setup = await _setup(db)
    second = await make_campaign(db, setup.world, title="Winter Sale")
    await _archive(db, setup)
    now = utcnow()

    # Died after claiming, before the mail server had anything: claimed again once it runs out.
    (lost,) = await outbox.claim(db, now=now, wait=timedelta(0), gap=GAP)
    assert (await send_due(db, mailer, now + timedelta(seconds=5)))["sent"] == 0
    later = now + outbox.CLAIM_LEASE + timedelta(seconds=1)
    assert (await send_due(db, mailer, later))["sent"] == 1
    # The slow first worker wakes up: its claim is gone, so it must not send.
    assert not await outbox.begin_sending(db, lost, "<late@pulse.test>", later)

    # Died after DATA, before recording the answer: counted as sent, never sent again.
    await _archive(db, setup, second)
    (email,) = await outbox.claim(db, now=later, wait=timedelta(0), gap=GAP)
    assert await outbox.begin_sending(db, email, "<dying@pulse.test>", later)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = SENDER, ANN, "Winter Sale archived"
    message.set_content("sent by a worker that died before it marked it")
    assert await mailer.transport.deliver(message, lambda: _true())
    for minutes in (1, 30, 60):
        await send_due(db, mailer, later + timedelta(minutes=minutes))

    assert len(inbox.to(ANN)) == 2
    states = {(row.campaign_id, row.state, row.last_error) for row in await _rows(db)}
    assert states == {
        (setup.campaign_id, OutboxState.SENT, None),
        (second, OutboxState.SENT, outbox.UNKNOWN_OUTCOME),
    }


async def _true() -> bool:
    return True


async def test_a_mail_server_that_fails_for_a_while_gets_the_email_later(
    db: Database, inbox: Inbox, mailer: Mailer
) -> None:
    setup = await _setup(db)
    other = await make_campaign(db, setup.world, title="Refused")
    await _archive(db, setup)
    now = utcnow()
    down = Mailer(SmtpTransport(parse_smtp_url(f"smtp://127.0.0.1:{free_port()}")), SENDER,
                  wait=timedelta(0), gap=GAP)  # fmt: skip

    assert (await send_due(db, down, now))["retried"] == 1
    inbox.refuse.append(451)
    assert (await send_due(db, mailer, now + timedelta(seconds=10)))["sent"] == 0  # backing off
    assert (await send_due(db, mailer, now + timedelta(seconds=31)))["retried"] == 1
    (row,) = await _rows(db)
    assert (row.state, row.attempts) == (OutboxState.PENDING, 2)
    assert "451" in (row.last_error or "")
    assert (await send_due(db, mailer, now + timedelta(minutes=2)))["sent"] == 1
    assert [m["Subject"] for m in inbox.messages] == ["Campaign Pulse: “Summer Sale” — archived"]

    inbox.refuse.append(550)  # refused for good: given up at once, the answer kept
    await _archive(db, setup, other)
    assert (await send_due(db, mailer, now + timedelta(minutes=3)))["given_up"] == 1
    refused = (await _rows(db))[-1]
    assert refused.state == OutboxState.FAILED and "550" in (refused.last_error or "")


async def test_a_balance_falling_below_a_tenth_of_its_deposits_mails_once(
    db: Database, inbox: Inbox, mailer: Mailer
) -> None:
    setup = await _setup(db, per_band=2, ann_opts_in=False)
    marketer, campaign = setup.world.marketer_id, setup.campaign_id
    async with db.writer() as session:  # the factory's ledger entry is no deposit
        await session.execute(delete(LedgerEntry).where(LedgerEntry.campaign_id == campaign))
        await session.commit()
    admin = command_line_actor()
    await deposit(db, None, marketer, admin, campaign, 1_000, "budget")
    await populate_target(db, None, setup.world.target_id)
    await create_offers(db, None, campaign, activation_delay=timedelta(0))
    await activate_due_offers(db, None)
    async with db.writer() as session:  # from now on: only the balance is news
        await set_email(session, setup.ann, True)
        await session.commit()
    async with db.reader() as session:
        by_cost = select(Offer.id).order_by(Offer.marketer_cost_cents.desc(), Offer.id)
        offers = list(await session.scalars(by_cost))
    sender = Actor(ActorKind.API_KEY, None, "ad server")
    # Each completion charges 400, 400, 300, 300: the balance goes 600, 200, -100, -400.
    for n, offer_id in enumerate(offers[:4]):
        event = {"id": f"c{n}", "offer_id": offer_id, "kind": "completion", "at": utcnow()}
        await ingest(db, None, marketer, sender, [event])
    await deposit(db, None, marketer, admin, campaign, 10_000, "top-up")  # above 10 % again

    assert [row.kind for row in await _rows(db)] == ["balance_low"]
    await send_due(db, mailer, utcnow())
    (email,) = inbox.messages
    assert email["Subject"] == "Campaign Pulse: “Summer Sale” — balance low"
    assert "Balance -1.00 is below 10 % of the 10.00 deposited" in email.get_content()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_without_an_smtp_url_emails_are_eml_files_in_the_mail_dir(
    db: Database, tmp_path: Path
) -> None:
    setup = await _setup(db)
    await _archive(db, setup)
    settings = Settings(secret_key=TEST_SECRET, mail_dir=tmp_path / "mail", mail_wait_seconds=0)
    service = MailService(settings)
    assert service.mailer is not None
    assert service.mailer.transport.description == f"written to {tmp_path / 'mail'}"

    assert (await service.run(db, utcnow()))["sent"] == 1
    (path,) = (tmp_path / "mail").glob("*.eml")
    email = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert ANN in str(email["To"]) and "archived" in str(email["Subject"])
    assert MailService(Settings(secret_key=TEST_SECRET)).mailer is None


@pytest.fixture
def settings(settings: Settings, smtp_server: tuple[Inbox, str]) -> Settings:
    """The live backend's worker polls the outbox every second and mails the test's server."""
    return settings.model_copy(
        update={
            "smtp_url": SecretStr(smtp_server[1]),
            "mail_from": SENDER,
            "mail_poll_seconds": 1,
            "mail_wait_seconds": 0.0,
        }
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the wiring, once
def test_a_launch_emails_the_people_who_opted_in_and_nobody_else(
    live_backend: LiveBackend, inbox: Inbox
) -> None:
    with live_backend.client(BOB) as bob, live_backend.client(DAVE) as dave:
        assert bob.get("/api/me/notifications").json() == {"email": False}
        assert bob.put("/api/me/notifications", json={"email": "yes"}).status_code == 422
        for client in (bob, dave):  # a manager and a viewer: any role may
            answer = client.put("/api/me/notifications", json={"email": True})
            assert answer.status_code == 200 and answer.json() == {"email": True}
        assert dave.get("/api/me/notifications").json() == {"email": True}
        campaigns = bob.get("/api/campaigns").json()
        campaign = next(c for c in campaigns if c["target"]["population_status"] == "not_populated")
        assert bob.post(f"/api/campaigns/{campaign['id']}/launch").status_code == 202
        actions = [entry["action"] for entry in bob.get("/api/audit").json()]
    assert actions.count("notifications_changed") == 2

    wait_for(lambda: inbox.to(BOB) and inbox.to(DAVE), timeout=30)
    for address in (BOB, DAVE):
        subject = str(inbox.to(address)[0]["Subject"])
        assert subject.startswith(f"Campaign Pulse: “{campaign['title']}” — target populated")
    assert inbox.to(ALICE) == inbox.to(CAROL) == []
    assert datetime.now(UTC) - inbox.messages[0]["Date"].datetime < timedelta(minutes=1)
