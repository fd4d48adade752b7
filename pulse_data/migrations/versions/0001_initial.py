"""Initial schema: the campaign domain and the stored event log

Revision ID: 0001
Revises:
Create Date: 2026-11-30 23:57:09.769603
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('marketers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_marketers'))
    )
    op.create_table('members',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('handle', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_members')),
    sa.UniqueConstraint('handle', name=op.f('uq_members_handle'))
    )
    op.create_table('stored_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('topic', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('event', sa.String(length=40), nullable=False),
    sa.Column('campaign_id', sa.BigInteger(), nullable=False),
    sa.Column('frame', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stored_events')),
    sa.UniqueConstraint('topic', 'seq', name=op.f('uq_stored_events_topic_seq'))
    )
    op.create_index(op.f('ix_stored_events_campaign_id'), 'stored_events', ['campaign_id'], unique=False)
    op.create_index(op.f('ix_stored_events_created_at'), 'stored_events', ['created_at'], unique=False)
    op.create_index('ix_stored_events_unpublished', 'stored_events', ['published', 'id'], unique=False)
    op.create_table('topic_heads',
    sa.Column('topic', sa.String(length=64), nullable=False),
    sa.Column('last_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('topic', name=op.f('pk_topic_heads'))
    )
    op.create_table('trait_groups',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trait_groups')),
    sa.UniqueConstraint('name', name=op.f('uq_trait_groups_name'))
    )
    op.create_table('targets',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('marketer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('population_status', sa.String(length=20), nullable=False),
    sa.Column('last_populated_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['marketer_id'], ['marketers.id'], name=op.f('fk_targets_marketer_id_marketers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_targets'))
    )
    op.create_index(op.f('ix_targets_marketer_id'), 'targets', ['marketer_id'], unique=False)
    op.create_table('traits',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('trait_group_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['trait_group_id'], ['trait_groups.id'], name=op.f('fk_traits_trait_group_id_trait_groups')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_traits')),
    sa.UniqueConstraint('trait_group_id', 'name', name=op.f('uq_traits_trait_group_id_name'))
    )
    op.create_index(op.f('ix_traits_trait_group_id'), 'traits', ['trait_group_id'], unique=False)
    op.create_table('users',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('marketer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['marketer_id'], ['marketers.id'], name=op.f('fk_users_marketer_id_marketers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_index(op.f('ix_users_marketer_id'), 'users', ['marketer_id'], unique=False)
    op.create_table('bands',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('target_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['target_id'], ['targets.id'], name=op.f('fk_bands_target_id_targets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bands')),
    sa.UniqueConstraint('target_id', 'level', name=op.f('uq_bands_target_id_level'))
    )
    op.create_index(op.f('ix_bands_target_id'), 'bands', ['target_id'], unique=False)
    op.create_table('campaigns',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('marketer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('target_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('launched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deactivated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['marketer_id'], ['marketers.id'], name=op.f('fk_campaigns_marketer_id_marketers')),
    sa.ForeignKeyConstraint(['target_id'], ['targets.id'], name=op.f('fk_campaigns_target_id_targets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns'))
    )
    op.create_index(op.f('ix_campaigns_marketer_id'), 'campaigns', ['marketer_id'], unique=False)
    op.create_index(op.f('ix_campaigns_target_id'), 'campaigns', ['target_id'], unique=False)
    op.create_table('member_tags',
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('trait_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_tags_member_id_members')),
    sa.ForeignKeyConstraint(['trait_id'], ['traits.id'], name=op.f('fk_member_tags_trait_id_traits')),
    sa.PrimaryKeyConstraint('member_id', 'trait_id', name=op.f('pk_member_tags'))
    )
    op.create_index(op.f('ix_member_tags_trait_id'), 'member_tags', ['trait_id'], unique=False)
    op.create_table('target_trait_groups',
    sa.Column('target_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('trait_group_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['target_id'], ['targets.id'], name=op.f('fk_target_trait_groups_target_id_targets')),
    sa.ForeignKeyConstraint(['trait_group_id'], ['trait_groups.id'], name=op.f('fk_target_trait_groups_trait_group_id_trait_groups')),
    sa.PrimaryKeyConstraint('target_id', 'trait_group_id', name=op.f('pk_target_trait_groups'))
    )
    op.create_table('target_traits',
    sa.Column('target_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('trait_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['target_id'], ['targets.id'], name=op.f('fk_target_traits_target_id_targets')),
    sa.ForeignKeyConstraint(['trait_id'], ['traits.id'], name=op.f('fk_target_traits_trait_id_traits')),
    sa.PrimaryKeyConstraint('target_id', 'trait_id', name=op.f('pk_target_traits'))
    )
    op.create_table('bids',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('band_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('offer_amount_cents', sa.Integer(), nullable=False),
    sa.Column('marketer_cost_cents', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['band_id'], ['bands.id'], name=op.f('fk_bids_band_id_bands')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_bids_campaign_id_campaigns')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bids')),
    sa.UniqueConstraint('campaign_id', 'band_id', name=op.f('uq_bids_campaign_id_band_id'))
    )
    op.create_table('ledger_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_ledger_entries_campaign_id_campaigns')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entries'))
    )
    op.create_index(op.f('ix_ledger_entries_campaign_id'), 'ledger_entries', ['campaign_id'], unique=False)
    op.create_table('offers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('band_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('offer_amount_cents', sa.Integer(), nullable=False),
    sa.Column('marketer_cost_cents', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('activate_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['band_id'], ['bands.id'], name=op.f('fk_offers_band_id_bands')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_offers_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_offers_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_offers')),
    sa.UniqueConstraint('campaign_id', 'member_id', name=op.f('uq_offers_campaign_id_member_id'))
    )
    op.create_index('ix_offers_campaign_state', 'offers', ['campaign_id', 'state'], unique=False)
    op.create_index('ix_offers_state_activate_at', 'offers', ['state', 'activate_at'], unique=False)
    op.create_table('target_populations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('target_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('band_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['band_id'], ['bands.id'], name=op.f('fk_target_populations_band_id_bands')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_target_populations_member_id_members')),
    sa.ForeignKeyConstraint(['target_id'], ['targets.id'], name=op.f('fk_target_populations_target_id_targets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_target_populations')),
    sa.UniqueConstraint('band_id', 'member_id', name=op.f('uq_target_populations_band_id_member_id')),
    sa.UniqueConstraint('target_id', 'member_id', name=op.f('uq_target_populations_target_id_member_id'))
    )
    op.create_index(op.f('ix_target_populations_band_id'), 'target_populations', ['band_id'], unique=False)
    op.create_table('ad_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('offer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('cost_cents', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_ad_events_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_ad_events_member_id_members')),
    sa.ForeignKeyConstraint(['offer_id'], ['offers.id'], name=op.f('fk_ad_events_offer_id_offers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ad_events'))
    )
    op.create_index(op.f('ix_ad_events_campaign_id'), 'ad_events', ['campaign_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_ad_events_campaign_id'), table_name='ad_events')
    op.drop_table('ad_events')
    op.drop_index(op.f('ix_target_populations_band_id'), table_name='target_populations')
    op.drop_table('target_populations')
    op.drop_index('ix_offers_state_activate_at', table_name='offers')
    op.drop_index('ix_offers_campaign_state', table_name='offers')
    op.drop_table('offers')
    op.drop_index(op.f('ix_ledger_entries_campaign_id'), table_name='ledger_entries')
    op.drop_table('ledger_entries')
    op.drop_table('bids')
    op.drop_table('target_traits')
    op.drop_table('target_trait_groups')
    op.drop_index(op.f('ix_member_tags_trait_id'), table_name='member_tags')
    op.drop_table('member_tags')
    op.drop_index(op.f('ix_campaigns_target_id'), table_name='campaigns')
    op.drop_index(op.f('ix_campaigns_marketer_id'), table_name='campaigns')
    op.drop_table('campaigns')
    op.drop_index(op.f('ix_bands_target_id'), table_name='bands')
    op.drop_table('bands')
    op.drop_index(op.f('ix_users_marketer_id'), table_name='users')
    op.drop_table('users')
    op.drop_index(op.f('ix_traits_trait_group_id'), table_name='traits')
    op.drop_table('traits')
    op.drop_index(op.f('ix_targets_marketer_id'), table_name='targets')
    op.drop_table('targets')
    op.drop_table('trait_groups')
    op.drop_table('topic_heads')
    op.drop_index('ix_stored_events_unpublished', table_name='stored_events')
    op.drop_index(op.f('ix_stored_events_created_at'), table_name='stored_events')
    op.drop_index(op.f('ix_stored_events_campaign_id'), table_name='stored_events')
    op.drop_table('stored_events')
    op.drop_table('members')
    op.drop_table('marketers')
