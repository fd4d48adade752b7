"""The demo data is what interfaces.md promises, loaded once, with every stat moving."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import distinct, func, select

from pulse_core.stats import CampaignState, PopulationStatus, campaign_state
from pulse_data.database import Database
from pulse_data.models import (
    Band,
    Bid,
    Campaign,
    Marketer,
    Member,
    MemberTag,
    TargetTraitGroup,
    User,
)
from pulse_data.passwords import verify_password
from pulse_data.seed import seed_demo
from pulse_data.stats import campaign_stats

LOGINS = {
    "alice@acme.example": ("Acme Outdoor", "admin"),
    "bob@acme.example": ("Acme Outdoor", "manager"),
    "carol@globex.example": ("Globex Foods", "admin"),
    "dave@acme.example": ("Acme Outdoor", "viewer"),
}


async def test_demo_data_matches_the_interface_contract(db: Database) -> None:
    steps: list[tuple[str, int, int]] = []
    assert await seed_demo(db, progress=lambda step, done, total: steps.append((step, done, total)))

    async with db.reader() as session:
        assert (await session.scalar(select(func.count(Member.id)))) >= 20_000
        tagged = await session.scalar(select(func.count(distinct(MemberTag.member_id))))
        assert tagged == await session.scalar(select(func.count(Member.id)))

        marketers = dict((await session.execute(select(Marketer.name, Marketer.id))).all())
        users = (await session.scalars(select(User))).all()
        assert {user.email: (user.marketer.name, user.role) for user in users} == LOGINS
        assert all(verify_password(user.password_hash, "pulse-demo") for user in users)
        # Each user's hash has a salt of its own.
        assert len({user.password_hash for user in users}) == len(users)

        campaigns = (await session.scalars(select(Campaign).order_by(Campaign.id))).all()
        groups = dict(
            (
                await session.execute(
                    select(TargetTraitGroup.target_id, func.count()).group_by(
                        TargetTraitGroup.target_id
                    )
                )
            ).all()
        )
        stats = await campaign_stats(session, campaign_ids=[c.id for c in campaigns])
        bids = defaultdict(list)
        for campaign_id, amount in await session.execute(
            select(Bid.campaign_id, Bid.offer_amount_cents)
            .join(Band, Band.id == Bid.band_id)
            .order_by(Bid.campaign_id, Band.level)
        ):
            bids[campaign_id].append(amount)

    for name, marketer_id in marketers.items():
        own = [c for c in campaigns if c.marketer_id == marketer_id]
        states = {c.id: campaign_state(c.launched_at, c.deactivated_at) for c in own}
        assert len(own) >= 5, name
        assert len({c.target_id for c in own}) >= 2, name
        assert all(groups[c.target_id] == 3 for c in own)

        waiting = [c for c in own if states[c.id] is CampaignState.NOT_LAUNCHED]
        never_populated = {
            c.target_id
            for c in waiting
            if c.target.population_status == PopulationStatus.NOT_POPULATED
        }
        launched_targets = {
            c.target_id for c in own if states[c.id] is not CampaignState.NOT_LAUNCHED
        }
        assert never_populated and not never_populated & launched_targets, name

        active = [c for c in own if states[c.id] is CampaignState.ACTIVE]
        assert active, name
        for campaign in active:
            s = stats[campaign.id]
            assert campaign.target.population_status == PopulationStatus.POPULATED
            assert all(
                (
                    s.target_population,
                    s.pending_offers,
                    s.current_offers,
                    s.pending_spend,
                    s.spend_to_date,
                    s.balance,
                    s.unique_reach,
                    s.banner_views,
                    s.text_jumps,
                )
            ), (campaign.title, s)

        archived = [c for c in own if states[c.id] is CampaignState.ARCHIVED]
        assert len(archived) == 1 and stats[archived[0].id].pending_offers == 0, name

        for campaign in own:
            amounts = bids[campaign.id]
            assert len(amounts) == 3 and amounts == sorted(amounts, reverse=True), campaign.title
            assert stats[campaign.id].balance > 0

    done = [done for _, done, _ in steps]
    assert done == sorted(done) and steps[-1][1] == steps[-1][2] == 100


async def test_seeding_again_adds_nothing(db: Database) -> None:
    assert await seed_demo(db, members=300)
    async with db.reader() as session:
        before = await session.scalar(select(func.count(Member.id)))
    assert not await seed_demo(db, members=300)
    async with db.reader() as session:
        assert await session.scalar(select(func.count(Member.id))) == before
        assert await session.scalar(select(func.count(Marketer.id))) == 2
