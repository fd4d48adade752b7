"""What every fan-out measurement shares: a throwaway database with one subscriber's identity,
Redis, and the events published as the workers publish them."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path


@dataclass
class Deployment:
    """What every measurement shares: the database, Redis and the subscriber's identity."""

    tmp: Path
    database_url: str
    redis_url: str
    redis_pid: int
    secret_key: str
    token: str
    campaign_id: int
    marketer_id: int
    server_core: int | None
    other_cores: set[int] | None


BENCH_SESSION = "bench-session"
BENCH_SESSION_HOURS = 2


def make_database(path: Path) -> tuple[int, int, int]:
    """A throwaway SQLite database with one marketer, user (logged in), target and campaign."""

    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from pulse_data.migrate import upgrade_database
    from pulse_data.models import AuthSession, Campaign, Marketer, Target, User

    upgrade_database(f"sqlite:///{path}")
    engine = create_engine(f"sqlite:///{path}")
    try:
        with Session(engine) as session:
            marketer = Marketer(name="Bench Outdoor")
            session.add(marketer)
            session.flush()
            user = User(
                marketer_id=marketer.id,
                email="bench@bench.example",
                name="Bench",
                password_hash="!no-login",
            )
            target = Target(marketer_id=marketer.id, title="Bench target")
            session.add_all([user, target])
            session.flush()
            target.population_status = "populated"
            campaign = Campaign(
                marketer_id=marketer.id,
                target_id=target.id,
                title="Bench campaign",
                launched_at=datetime.now(UTC),
            )
            session.add(campaign)
            session.add(
                AuthSession(
                    id=BENCH_SESSION,
                    user_id=user.id,
                    expires_at=datetime.now(UTC) + timedelta(hours=BENCH_SESSION_HOURS),
                )
            )
            session.commit()
            return marketer.id, user.id, campaign.id
    finally:
        engine.dispose()


class EventSource:
    """Builds announcements exactly as the workers do: each event on both of its topics."""

    def __init__(self, campaign_id: int, marketer_id: int) -> None:
        from pulse_core.stats import BandCount, CampaignStats
        from pulse_core.topics import topics_for_campaign

        self.campaign_id = campaign_id
        self.topic, self.marketer_topic = topics_for_campaign(campaign_id, marketer_id)
        self.seq = 0  # on the campaign topic, the one subscribed to
        self.marketer_seq = 0
        self.stats = CampaignStats(
            target_population=18_234,
            pending_offers=1_200,
            current_offers=5_406,
            completed_offers=312,
            pending_spend=1_234.5,
            spend_to_date=5_678.9,
            balance=43_210.55,
            unique_reach=4_021,
            banner_views=10_234,
            text_jumps=812,
            bands=(
                BandCount(band_id=11, level=0, name="Bullseye", population=4_120),
                BandCount(band_id=12, level=1, name="Ring 1", population=6_100),
                BandCount(band_id=13, level=2, name="Ring 2", population=8_014),
            ),
        ).to_wire()

    def announcement(self, events: int = 1) -> str:
        from pulse_core.names import EventName, UpdateReason
        from pulse_core.protocol import event_frame, utc_now_iso
        from pulse_data.eventlog import RecordedEvent
        from pulse_data.pubsub import encode_announcement

        recorded = []
        for _ in range(events):
            self.seq += 1
            self.marketer_seq += 1
            self.stats["banner_views"] += 1
            self.stats["spend_to_date"] = round(self.stats["spend_to_date"] + 0.35, 2)
            self.stats["balance"] = round(self.stats["balance"] - 0.35, 2)
            ts = utc_now_iso()
            extra = {"reason": UpdateReason.AD_ACTIVITY.value, "sent_ns": time.time_ns()}
            for topic, seq in ((self.topic, self.seq), (self.marketer_topic, self.marketer_seq)):
                frame = event_frame(
                    topic=topic,
                    seq=seq,
                    event=EventName.CAMPAIGN_UPDATED,
                    campaign_id=self.campaign_id,
                    ts=ts,
                    stats=self.stats,
                    extra=extra,
                )
                recorded.append(RecordedEvent(id=0, topic=topic, seq=seq, frame=frame))
        return encode_announcement(recorded)

    def frame_bytes(self) -> int:
        """Size of one event frame on the subscribed topic (the payload each subscriber gets)."""
        data = json.loads(self.announcement_preview())
        return len(data[0][2].encode())

    def announcement_preview(self) -> str:
        saved = (self.seq, self.marketer_seq, dict(self.stats))
        try:
            return self.announcement()
        finally:
            self.seq, self.marketer_seq, self.stats = saved


class Publisher:
    def __init__(self, redis_url: str) -> None:
        import redis

        from pulse_core.names import EVENTS_CHANNEL

        self.channel = EVENTS_CHANNEL
        self.client = redis.Redis.from_url(redis_url)

    def publish(self, message: str) -> int:
        return int(self.client.publish(self.channel, message))  # type: ignore[arg-type]

    def close(self) -> None:
        self.client.close()
