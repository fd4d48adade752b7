"""SQLAlchemy models of the campaign domain and of the stored event log."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from pulse_core.roles import Role
from pulse_core.stats import PopulationStatus

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given; use datetime.now(UTC)")
        return value

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Marketer(Base):
    __tablename__ = "marketers"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    marketer_id: Mapped[int] = mapped_column(ForeignKey("marketers.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), default=Role.MANAGER.value)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    marketer: Mapped[Marketer] = relationship(lazy="joined")


class AuthSession(Base):
    """One login: its token names it, so ending it here ends the token on every server."""

    __tablename__ = "auth_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    end_reason: Mapped[str | None] = mapped_column(String(40))


class ApiKey(Base):
    """An ingestion key of one marketer: only the SHA-256 of the key is kept."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    marketer_id: Mapped[int] = mapped_column(ForeignKey("marketers.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class TraitGroup(Base):
    __tablename__ = "trait_groups"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class Trait(Base):
    __tablename__ = "traits"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    trait_group_id: Mapped[int] = mapped_column(ForeignKey("trait_groups.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    __table_args__ = (UniqueConstraint("trait_group_id", "name"),)


class Member(Base):
    __tablename__ = "members"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    handle: Mapped[str] = mapped_column(String(100), unique=True)


class MemberTag(Base):
    """A member has a trait: the tags are what targets match on."""

    __tablename__ = "member_tags"
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    trait_id: Mapped[int] = mapped_column(ForeignKey("traits.id"), primary_key=True, index=True)


class Target(Base):
    __tablename__ = "targets"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    marketer_id: Mapped[int] = mapped_column(ForeignKey("marketers.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    population_status: Mapped[str] = mapped_column(
        String(20), default=PopulationStatus.NOT_POPULATED.value
    )
    last_populated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class TargetTraitGroup(Base):
    """A trait group a target matches on; `position` orders the rings (the last drops first)."""

    __tablename__ = "target_trait_groups"
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id"), primary_key=True)
    trait_group_id: Mapped[int] = mapped_column(ForeignKey("trait_groups.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)


class TargetTrait(Base):
    """A trait value a target accepts; a member matches a group if it has any accepted trait."""

    __tablename__ = "target_traits"
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id"), primary_key=True)
    trait_id: Mapped[int] = mapped_column(ForeignKey("traits.id"), primary_key=True)


class Band(Base):
    """A band of a target: level 0 is the bullseye, each outer ring drops one trait group."""

    __tablename__ = "bands"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id"), index=True)
    level: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    __table_args__ = (UniqueConstraint("target_id", "level"),)


class TargetPopulation(Base):
    """A member placed in the innermost band of a target that they match."""

    __tablename__ = "target_populations"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id"))
    band_id: Mapped[int] = mapped_column(ForeignKey("bands.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    __table_args__ = (
        UniqueConstraint("target_id", "member_id"),
        UniqueConstraint("band_id", "member_id"),
    )


class Campaign(Base):
    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    marketer_id: Mapped[int] = mapped_column(ForeignKey("marketers.id"), index=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    starts_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    launched_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    deactivated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    paused_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    target: Mapped[Target] = relationship(lazy="joined")


class Bid(Base):
    """What a campaign pays per band: the member's offer and the marketer's cost, in cents."""

    __tablename__ = "bids"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    band_id: Mapped[int] = mapped_column(ForeignKey("bands.id"))
    offer_amount_cents: Mapped[int] = mapped_column(Integer)
    marketer_cost_cents: Mapped[int] = mapped_column(Integer)
    __table_args__ = (UniqueConstraint("campaign_id", "band_id"),)


class LedgerKind:
    DEPOSIT = "deposit"
    CHARGE = "charge"


class LedgerEntry(Base):
    """Money in (deposits, positive) and out (charges, negative) of a campaign's balance."""

    __tablename__ = "ledger_entries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20), default=LedgerKind.CHARGE)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class OfferState:
    PENDING = "pending"
    CURRENT = "current"
    COMPLETED = "completed"


class Offer(Base):
    __tablename__ = "offers"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    band_id: Mapped[int] = mapped_column(ForeignKey("bands.id"))
    offer_amount_cents: Mapped[int] = mapped_column(Integer)
    marketer_cost_cents: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20), default=OfferState.PENDING)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    activate_at: Mapped[datetime] = mapped_column(UtcDateTime)
    __table_args__ = (
        UniqueConstraint("campaign_id", "member_id"),
        Index("ix_offers_state_activate_at", "state", "activate_at"),
        Index("ix_offers_campaign_state", "campaign_id", "state"),
    )


class AdEventKind:
    BANNER_VIEW = "banner_view"
    TEXT_JUMP = "text_jump"
    COMPLETION = "completion"


class AdEvent(Base):
    """A member saw a banner, jumped to the text, or completed an offer.

    `external_id` is the sender's own id of the event, unique per marketer, so that a sender
    may retry a request safely.
    """

    __tablename__ = "ad_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    marketer_id: Mapped[int | None] = mapped_column(ForeignKey("marketers.id"))
    external_id: Mapped[str | None] = mapped_column(String(100))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(String(20))
    cost_cents: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    __table_args__ = (UniqueConstraint("marketer_id", "external_id"),)


class AuditEntry(Base):
    """Who did what and when: kept apart from the event log, for its own retention."""

    __tablename__ = "audit_entries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    marketer_id: Mapped[int | None] = mapped_column(ForeignKey("marketers.id"))
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    actor_kind: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_name: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(40))
    campaign_id: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[str] = mapped_column(Text, default="{}")
    __table_args__ = (
        Index("ix_audit_entries_marketer", "marketer_id", "id"),
        Index("ix_audit_entries_campaign", "campaign_id", "id"),
    )


class TopicHead(Base):
    """The last `seq` handed out on a topic. Its row lock orders the topic's writers."""

    __tablename__ = "topic_heads"
    topic: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class StoredEvent(Base):
    """The audit trail: every event frame ever published, per topic, in `seq` order."""

    __tablename__ = "stored_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    topic: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    event: Mapped[str] = mapped_column(String(40))
    campaign_id: Mapped[int] = mapped_column(BigInteger, index=True)
    frame: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (
        UniqueConstraint("topic", "seq"),
        Index("ix_stored_events_unpublished", "published", "id"),
    )


class NotificationSetting(Base):
    """What a user asked to be told about by email; no row means nothing."""

    __tablename__ = "notification_settings"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    email: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class BalanceWatch(Base):
    """Whether a campaign's balance was below 10 % of its deposits when last changed."""

    __tablename__ = "balance_watches"
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    low: Mapped[bool] = mapped_column(Boolean, default=False)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class OutboxState:
    PENDING = "pending"
    CLAIMED = "claimed"  # a worker will send it; not sent yet
    SENDING = "sending"  # handed to the mail server: never sent again
    SENT = "sent"
    FAILED = "failed"


class OutboxEntry(Base):
    """One event one user is to be emailed about, written in the event's transaction."""

    __tablename__ = "mail_outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    kind: Mapped[str] = mapped_column(String(40))
    event_seq: Mapped[int] = mapped_column(BigInteger)  # its seq on the campaign's topic
    summary: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    state: Mapped[str] = mapped_column(String(20), default=OutboxState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    message_id: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        UniqueConstraint("user_id", "campaign_id", "kind", "event_seq"),
        Index("ix_mail_outbox_due", "state", "next_attempt_at"),
    )
