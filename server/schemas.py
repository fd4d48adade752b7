"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from pulse_core.roles import Role
from pulse_core.stats import CampaignState, PopulationStatus


def _storable(text: str) -> str:
    """Text every database keeps as it is: no NUL character, no lone surrogate."""
    if "\x00" in text:
        raise ValueError("may not contain a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return text


def _utc(moment: datetime) -> datetime:
    """A time in UTC; one without an offset is taken as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


Id = Annotated[int, Field(strict=True, ge=1, le=2**53)]
Cents = Annotated[int, Field(strict=True, ge=1, le=2**31 - 1, description="whole cents")]
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_storable),
]
Description = Annotated[str, StringConstraints(max_length=5000), AfterValidator(_storable)]
Note = Annotated[str, StringConstraints(max_length=200), AfterValidator(_storable)]
Moment = Annotated[datetime, AfterValidator(_utc)]


def invalid_field(field: tuple[str | int, ...], message: str) -> RequestValidationError:
    """A 422 naming a body field, in the shape of FastAPI's own validation errors."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", *field), "msg": message, "input": None}]
    )


class StrictBody(BaseModel):
    """A request body: an unknown field is an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


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


class BidOut(BaseModel):
    band_id: int
    level: int
    offer_amount_cents: int
    marketer_cost_cents: int


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
    paused_at: datetime | None = None
    bids: list[BidOut] | None = Field(
        default=None, description="the bids per band, in one campaign's answers (null in lists)"
    )
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


class TraitOut(BaseModel):
    id: int
    name: str


class TraitGroupOut(BaseModel):
    id: int
    name: str
    traits: list[TraitOut]


class TargetBandOut(BaseModel):
    id: int
    level: int = Field(description="0 is the bullseye; each outer ring drops the last group")
    name: str
    population: int


class TargetGroupOut(BaseModel):
    trait_group_id: int
    trait_ids: list[int]


class TargetDetailOut(BaseModel):
    id: int
    title: str
    population_status: PopulationStatus
    last_populated_at: datetime | None
    created_at: datetime
    bands: list[TargetBandOut]
    groups: list[TargetGroupOut]


class TargetGroupIn(StrictBody):
    trait_group_id: Id
    trait_ids: list[Id] = Field(min_length=1, max_length=1000)


class TargetIn(StrictBody):
    title: Title
    groups: list[TargetGroupIn] = Field(
        min_length=1, max_length=20, description="in ring order: bullseye needs all of them"
    )


class BidIn(StrictBody):
    band_id: Id
    offer_amount_cents: Cents
    marketer_cost_cents: Cents


class CampaignIn(StrictBody):
    title: Title
    description: Description = ""
    target_id: Id
    starts_at: Moment
    ends_at: Moment
    bids: list[BidIn] = Field(min_length=1, max_length=20)


class CampaignPatch(StrictBody):
    """Any of the fields; the others stay as they are."""

    title: Title | None = None
    description: Description | None = None
    starts_at: Moment | None = None
    ends_at: Moment | None = None
    bids: list[BidIn] | None = Field(default=None, min_length=1, max_length=20)

    @field_validator("title", "description", "starts_at", "ends_at", "bids", mode="before")
    @classmethod
    def _given(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null: leave the field out to keep it")
        return value

    @model_validator(mode="after")
    def _something(self) -> CampaignPatch:
        if not self.model_fields_set:
            raise ValueError("give at least one of title, description, starts_at, ends_at, bids")
        return self


class DepositIn(StrictBody):
    amount_cents: Annotated[int, Field(strict=True, ge=1, le=10**12, description="whole cents")]
    note: Note = "Deposit"


class DepositOut(BaseModel):
    id: int
    campaign_id: int
    kind: Literal["deposit"] = "deposit"
    amount_cents: int
    note: str
    created_at: datetime
    balance_cents: int = Field(description="the campaign's balance after the deposit")


class ActorOut(BaseModel):
    kind: str = Field(description="user, api_key or system")
    id: int | None
    name: str


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor: ActorOut
    action: str
    campaign_id: int | None
    detail: dict[str, Any]
