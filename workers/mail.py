"""Email notifications leave the outbox here: by SMTP, or as .eml files into a folder.

Never the same event twice, so at most once: a claimed email is marked `sending`, and that
mark committed, right before the mail server gets the message (DATA). A failure before that
point is known not to have sent anything and is retried with growing delays (connection
failures, 4xx answers) or given up (5xx to the recipient or the message), keeping the error.
An answer to DATA is final either way. Only when the connection breaks during DATA, or the
worker dies between DATA and recording the answer, is the outcome unknown: the email is then
counted as sent and never sent again; the row keeps a note saying so. At-least-once would
retry that case instead; a per-email `Message-ID` (from the outbox ids) would let mail
clients fold the duplicate, but a duplicate is what the contract forbids, so we do not.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

from pulse_core.config import ConfigError, Settings
from pulse_data import outbox
from pulse_data.database import Database
from pulse_data.models import utcnow
from pulse_data.notifications import kind_label
from pulse_data.outbox import ClaimedEmail

log = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 30.0
DEFAULT_FILE_SENDER = "Campaign Pulse <pulse@localhost>"
PRUNE_EVERY = timedelta(hours=1)
TURN_OFF = (
    "You get these emails because you turned on email notifications in Campaign Pulse.\n"
    'To turn them off: PUT /api/me/notifications with {"email": false}.'
)

BeforeData = Callable[[], Awaitable[bool]]


class MailError(Exception):
    """The email could not be handed over; subclasses say whether it may have gone."""


class TemporaryMailError(MailError):
    """Not sent; worth trying again later. `server_down`: no other email will go now either."""

    def __init__(self, message: str, *, server_down: bool = False) -> None:
        super().__init__(message)
        self.server_down = server_down


class PermanentMailError(MailError):
    """Not sent, and the mail server refuses this email for good."""


class UnknownOutcome(MailError):
    """The connection broke while the mail server had the message: it may have gone."""


class Transport(Protocol):
    description: str

    async def deliver(self, message: EmailMessage, before_data: BeforeData) -> bool:
        """Hand the message over; False (nothing sent) when `before_data` says the claim is lost."""
        ...


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    host: str
    port: int
    tls: bool  # smtps://: TLS from the start; smtp:// uses STARTTLS when the server offers it
    username: str | None
    password: str | None

    @property
    def description(self) -> str:
        """The server, without user or password: safe to log."""
        return f"{'smtps' if self.tls else 'smtp'}://{self.host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpTarget:
    """`smtp://user:password@host:port` or `smtps://...`; user and password URL-encoded."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError("PULSE_SMTP_URL must look like smtp://user:password@host:port")
    tls = parts.scheme == "smtps"
    try:
        port = parts.port or (465 if tls else 25)
    except ValueError:
        raise ConfigError("PULSE_SMTP_URL has a port that is not a number") from None
    return SmtpTarget(
        host=parts.hostname,
        port=port,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


class SmtpTransport:
    """One connection per email: these are a few an hour, not a stream."""

    def __init__(self, target: SmtpTarget, timeout: float = SMTP_TIMEOUT_SECONDS) -> None:
        self.target = target
        self.timeout = timeout
        self.description = f"sent through {target.description}"

    async def deliver(self, message: EmailMessage, before_data: BeforeData) -> bool:
        target = self.target
        client = aiosmtplib.SMTP(
            hostname=target.host,
            port=target.port,
            use_tls=target.tls,
            start_tls=False if target.tls else None,
            timeout=self.timeout,
        )
        try:
            try:
                await client.connect()
                if target.username:
                    await client.login(target.username, target.password or "")
            except aiosmtplib.SMTPResponseException as exc:
                raise TemporaryMailError(_answer(exc), server_down=True) from exc
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise TemporaryMailError(f"{target.description}: {exc}", server_down=True) from exc
            try:
                await client.mail(parseaddr(str(message["From"]))[1])
                await client.rcpt(parseaddr(str(message["To"]))[1])
            except aiosmtplib.SMTPRecipientRefused as exc:
                raise _refused(exc) from exc
            except aiosmtplib.SMTPResponseException as exc:
                raise TemporaryMailError(_answer(exc)) from exc
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise TemporaryMailError(str(exc), server_down=True) from exc
            if not await before_data():
                return False
            try:
                await client.data(message.as_bytes(policy=SMTP))
            except aiosmtplib.SMTPResponseException as exc:
                raise _refused(exc) from exc
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise UnknownOutcome(str(exc)) from exc
            return True
        finally:
            if client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()


def _answer(exc: aiosmtplib.SMTPResponseException) -> str:
    return f"the mail server answered {exc.code} {exc.message}"


def _refused(exc: aiosmtplib.SMTPResponseException) -> MailError:
    """A 4xx answer is worth a retry; a 5xx refuses this email for good."""
    if 400 <= exc.code < 500:
        return TemporaryMailError(_answer(exc))
    return PermanentMailError(_answer(exc))


class FileTransport:
    """Writes each email as an .eml file: what `pulse up` does without PULSE_SMTP_URL."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.description = f"written to {directory}"

    async def deliver(self, message: EmailMessage, before_data: BeforeData) -> bool:
        if not await before_data():
            return False
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        name = re.sub(r"[^A-Za-z0-9.-]+", "", str(message["Message-ID"]).split("@")[0])
        try:
            await asyncio.to_thread(
                self._write, self.directory / f"{stamp}-{name}.eml", message.as_bytes()
            )
        except OSError as exc:
            raise TemporaryMailError(f"could not write to {self.directory}: {exc}") from exc
        return True

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        """Whole or not at all: a reader never sees half an email."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        partial.write_bytes(data)
        os.replace(partial, path)


@dataclass(frozen=True, slots=True)
class Mailer:
    transport: Transport
    sender: str
    wait: timedelta  # the first email about a campaign waits this long for what follows
    gap: timedelta  # the least time between two emails to one user about one campaign


def mailer_for(settings: Settings) -> Mailer | None:
    """The mailer these settings ask for, or None when emails are off."""
    transport: Transport
    if settings.smtp_url is not None:
        transport = SmtpTransport(parse_smtp_url(settings.smtp_url.get_secret_value()))
    elif settings.mail_dir is not None:
        transport = FileTransport(settings.mail_dir)
    else:
        return None
    return Mailer(
        transport=transport,
        sender=settings.mail_from or DEFAULT_FILE_SENDER,
        wait=timedelta(seconds=settings.mail_wait_seconds),
        gap=timedelta(seconds=settings.mail_gap_seconds),
    )


def message_id(email: ClaimedEmail, sender: str) -> str:
    """The same for the same outbox rows: a copy would fold into the original in mail clients."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "campaign-pulse.invalid"
    return f"<pulse-outbox-{email.ids[0]}-{email.ids[-1]}-{len(email.ids)}@{domain}>"


def compose(email: ClaimedEmail, *, sender: str, message_id: str, now: datetime) -> EmailMessage:
    """The plain-text email listing one campaign's events for one user."""
    labels = list(dict.fromkeys(kind_label(item.kind) for item in email.items))
    message = EmailMessage()
    message["Subject"] = f"Campaign Pulse: “{email.campaign_title}” — {', '.join(labels)}"
    message["From"] = sender
    message["To"] = formataddr((email.user_name, email.address))
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    greeting = f"Hello {email.user_name}," if email.user_name else "Hello,"
    lines = [
        greeting,
        "",
        f"News about the campaign “{email.campaign_title}” of {email.marketer_name}:",
        "",
        *(
            f"  {item.created_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC  {item.summary}"
            for item in email.items
        ),
        "",
        "Open Campaign Pulse to follow it live.",
        "",
        "-- ",
        TURN_OFF,
    ]
    message.set_content("\n".join(lines) + "\n")
    return message


async def send_due(db: Database, mailer: Mailer, now: datetime) -> dict[str, int]:
    """Send the emails that may go at `now`; how many were sent, retried, given up, unknown."""
    counts = {"sent": 0, "retried": 0, "given_up": 0, "unknown": 0}
    if not await outbox.has_work(db, now=now, wait=mailer.wait):
        return counts
    emails = await outbox.claim(db, now=now, wait=mailer.wait, gap=mailer.gap)
    for index, email in enumerate(emails):
        outcome = await _send_one(db, mailer, email, now)
        if outcome == "server_down":
            counts["retried"] += 1
            await outbox.release(db, emails[index + 1 :])
            break
        if outcome in counts:
            counts[outcome] += 1
    return counts


async def _send_one(db: Database, mailer: Mailer, email: ClaimedEmail, now: datetime) -> str:
    """Send one claimed email and record how it ended; returns a key of `send_due`'s counts."""
    msgid = message_id(email, mailer.sender)
    handed_over = False

    async def before_data() -> bool:
        nonlocal handed_over
        handed_over = await outbox.begin_sending(db, email, msgid, now)
        return handed_over

    try:
        message = compose(email, sender=mailer.sender, message_id=msgid, now=now)
        if not await mailer.transport.deliver(message, before_data):
            return "lost"  # another worker took the claim over: it sends the email
    except UnknownOutcome as exc:
        log.warning("email %s may or may not have gone (%s): not sent again", msgid, exc)
        await outbox.mark_sent(db, email, note=f"{outbox.UNKNOWN_OUTCOME} ({exc})")
        return "unknown"
    except PermanentMailError as exc:
        log.error("email %s to user %d refused: %s", msgid, email.user_id, exc)
        await outbox.mark_not_sent(db, email, now, str(exc), retry=False)
        return "given_up"
    except TemporaryMailError as exc:
        log.warning("email %s not sent, will retry: %s", msgid, exc)
        await outbox.mark_not_sent(db, email, now, str(exc), retry=True)
        return "server_down" if exc.server_down else "retried"
    except Exception as exc:
        # A bug or an answer nobody expected: recorded, and the rows never stay claimed.
        log.exception("email %s failed unexpectedly", msgid)
        if handed_over:
            await outbox.mark_sent(db, email, note=f"{outbox.UNKNOWN_OUTCOME} ({exc!r})")
            return "unknown"
        await outbox.mark_not_sent(db, email, now, repr(exc), retry=True)
        return "retried"
    await outbox.mark_sent(db, email)
    return "sent"


class MailService:
    """A worker's sending, made once at its start (each job gets its own copy of arq's ctx)."""

    def __init__(self, settings: Settings) -> None:
        self.mailer = mailer_for(settings)
        self.retention = timedelta(days=settings.event_retention_days)
        self.pruned_at: datetime | None = None
        if self.mailer is None:
            log.info("email notifications are off: set PULSE_SMTP_URL and PULSE_MAIL_FROM")
        else:
            log.info("email notifications are %s", self.mailer.transport.description)

    async def run(self, db: Database, now: datetime) -> dict[str, Any]:
        """Send what is due; once an hour, forget rows older than the event history."""
        result: dict[str, Any] = {}
        if self.mailer is not None:
            result.update(await send_due(db, self.mailer, now))
        if self.pruned_at is None or now - self.pruned_at > PRUNE_EVERY:
            self.pruned_at = now
            result["pruned"] = await outbox.prune(db, now - self.retention)
        return result


async def send_notifications(ctx: dict[str, Any]) -> dict[str, Any]:
    """The cron job of every worker."""
    service: MailService = ctx["mail"]
    return await service.run(ctx["db"], utcnow())
