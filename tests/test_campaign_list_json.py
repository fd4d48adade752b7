"""The campaign list, written without a model per campaign, is byte for byte the models' JSON."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import TypeAdapter
from sqlalchemy import insert, select, update

from pulse_data.campaigns import campaign_listing, get_campaign
from pulse_data.database import Database
from pulse_data.models import Campaign, LedgerEntry, Marketer, Target
from server.api.campaigns import campaign_out, listing_json
from server.schemas import CampaignOut

ODD_TEXT = 'Say "hi" \\ back\nnext\tline \x01\x1f\x7f é 雪 🙂 \u2028 100% {"json"}'
CAMPAIGNS = TypeAdapter(list[CampaignOut])


async def _model_json(db: Database, marketer_id: int) -> bytes:
    """The list as the models write it: each campaign's own answer, without its bids."""
    async with db.reader() as session:
        ids = await session.scalars(
            select(Campaign.id).where(Campaign.marketer_id == marketer_id).order_by(Campaign.id)
        )
        views = [await get_campaign(session, marketer_id, campaign_id) for campaign_id in ids]
    return CAMPAIGNS.dump_json(
        [campaign_out(view).model_copy(update={"bids": None}) for view in views]
    )


async def _listed(db: Database, marketer_id: int) -> bytes:
    async with db.reader() as session:
        return listing_json(await campaign_listing(session, marketer_id))


async def test_the_list_is_the_models_json_for_odd_text_times_and_amounts(
    demo_database_url: str,
) -> None:
    db = Database(demo_database_url)
    try:
        async with db.writer() as session:
            first, second, third, _, fifth = (
                await session.scalars(select(Campaign.id).order_by(Campaign.id).limit(5))
            ).all()
            marketer_id = await session.scalar(
                select(Campaign.marketer_id).where(Campaign.id == first)
            )
            await session.execute(
                update(Campaign)
                .where(Campaign.id == first)
                .values(
                    title=ODD_TEXT[:200],
                    description=ODD_TEXT * 3,
                    starts_at=datetime(2027, 1, 1, 9, 30, tzinfo=UTC),  # a whole second
                    ends_at=datetime(2027, 2, 1, 9, 30, 0, 1, tzinfo=UTC),
                    paused_at=datetime(2027, 1, 2, tzinfo=UTC),
                    launched_at=datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
                    deactivated_at=None,
                )
            )
            target_id = await session.scalar(select(Campaign.target_id).where(Campaign.id == first))
            await session.execute(
                update(Target).where(Target.id == target_id).values(title=ODD_TEXT[::-1][:200])
            )
            # Adjustments of 0.05, -10,000.05 and 12,345,678,901.23: odd cents, less, a lot;
            # and 0.07 to one of two campaigns without offers on one target
            for campaign_id, cents in [
                (first, 5),
                (second, -1_000_005),
                (third, 1_234_567_890_123),
                (fifth, 7),
            ]:
                await session.execute(
                    insert(LedgerEntry).values(
                        campaign_id=campaign_id, amount_cents=cents, description="Adjustment"
                    )
                )
            await session.commit()
        assert marketer_id is not None

        expected = await _model_json(db, marketer_id)
        assert await _listed(db, marketer_id) == expected
        for campaign_id in [first, second, third]:
            assert f'"id":{campaign_id},' in expected.decode()
    finally:
        await db.dispose()


async def test_every_marketers_list_is_the_models_json(demo_database_url: str) -> None:
    db = Database(demo_database_url)
    try:
        async with db.reader() as session:
            marketers = (await session.scalars(select(Marketer.id))).all()
        for marketer_id in marketers:
            assert await _listed(db, marketer_id) == await _model_json(db, marketer_id)
    finally:
        await db.dispose()
