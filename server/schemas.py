"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from pulse_core.roles import Role
from pulse_core.stats import CampaignState, PopulationStatus


class LoginRequest(BaseModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    id: int
    email: str
    name: str
    marketer_id: int
    marketer_name: str
    role: Role


class LoginResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime
    user: UserOut


class TargetOut(BaseModel):
    id: int
    title: str
    population_status: PopulationStatus
    last_populated_at: datetime | None


class BandOut(BaseModel):
    band_id: int
    level: int
    name: str
    population: int


class StatsOut(BaseModel):
    target_population: int
    pending_offers: int
    current_offers: int
    completed_offers: int
    pending_spend: float
    spend_to_date: float
    balance: float
    unique_reach: int
    banner_views: int
    text_jumps: int
    bands: list[BandOut]


class CampaignOut(BaseModel):
    id: int
    marketer_id: int
    title: str
    description: str
    state: CampaignState
    target: TargetOut
    stats: StatsOut
    starts_at: datetime | None
    ends_at: datetime | None
    launched_at: datetime | None
    deactivated_at: datetime | None
    as_of_seq: int = Field(
        description=(
            "the marketer topic's seq when this campaign was read: it already reflects every "
            "event of that topic up to this seq, and an event with a greater seq is newer"
        )
    )


class ActionAccepted(BaseModel):
    message: str
    request_id: str | None = None


class ErrorOut(BaseModel):
    detail: str
