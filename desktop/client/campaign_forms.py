"""The campaign and deposit forms without Qt: the rules the server checks, and the bodies sent.

The limits and checks mirror `POST /api/campaigns`, `PATCH /api/campaigns/{id}` and
`POST /api/campaigns/{id}/deposits`, so that a dialog can refuse bad input before sending it.
Errors are keyed by the body field they are about (`title`, `bids.1.offer_amount_cents`, ...),
which is also how a server's 422 names them (`field_key`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from desktop.client.models import Campaign
from pulse_core.stats import PopulationStatus

TITLE_MAX = 200
DESCRIPTION_MAX = 5000
NOTE_MAX = 200
BIDS_MAX = 20
BID_MAX_CENTS = 2**31 - 1
DEPOSIT_MAX_CENTS = 10**12
BID_FIELDS = ("offer_amount_cents", "marketer_cost_cents")
BID_LABELS = {"offer_amount_cents": "offer", "marketer_cost_cents": "cost"}

Errors = dict[str, str]  # body field → what is wrong with it


# ---- money ----------------------------------------------------------------------------

_MONEY = re.compile(r"^\$?\s*(\d+(?:[.,]\d*)?|[.,]\d+)$")


def parse_money(text: str) -> int:
    """`12`, `12.5`, `1,234.56` or `$3` → whole cents; ValueError says what to type instead."""
    cleaned = text.strip().replace(" ", "")
    if not cleaned:
        raise ValueError("Enter an amount, for example 1.50")
    if cleaned.startswith("-"):
        raise ValueError("Must be above 0")
    if "," in cleaned and "." in cleaned:
        cleaned = cleaned.replace(",", "")  # thousands separators
    elif re.fullmatch(r"\$?\d{1,3}(,\d{3})+", cleaned):
        cleaned = cleaned.replace(",", "")
    match = _MONEY.match(cleaned)
    if match is None:
        raise ValueError("Enter an amount in figures, for example 1.50")
    number = match.group(1).replace(",", ".")
    try:
        amount = Decimal(number)
    except InvalidOperation:
        raise ValueError("Enter an amount in figures, for example 1.50") from None
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError("Use at most two decimals (whole cents)")
    return int(amount * 100)


def money(cents: int) -> str:
    """`$1,234.50` for display."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{part:02d}"


def money_input(cents: int) -> str:
    """`1234.50`: what a money field holds for that amount."""
    whole, part = divmod(cents, 100)
    return f"{whole}.{part:02d}"


def cents_of(amount: float) -> int:
    """The whole cents of an amount the wire carries with two decimals."""
    return round(amount * 100)


# ---- what the server tells about targets and bids ---------------------------------------


@dataclass(frozen=True, slots=True)
class BandChoice:
    id: int
    level: int  # 0 is the bullseye
    name: str
    population: int = 0


@dataclass(frozen=True, slots=True)
class TargetChoice:
    """A target of `GET /api/targets`, with its bands bullseye first."""

    id: int
    title: str
    population_status: PopulationStatus
    bands: tuple[BandChoice, ...]

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> TargetChoice:
        try:
            status = PopulationStatus(str(data.get("population_status")))
        except ValueError:
            status = PopulationStatus.NOT_POPULATED
        bands = sorted(
            (
                BandChoice(
                    int(band["id"]),
                    int(band.get("level") or 0),
                    str(band.get("name") or f"Band {band['id']}"),
                    int(band.get("population") or 0),
                )
                for band in data.get("bands") or ()
            ),
            key=lambda band: band.level,
        )
        return cls(int(data["id"]), str(data.get("title") or ""), status, tuple(bands))

    @property
    def audience(self) -> int:
        return sum(band.population for band in self.bands)

    @property
    def label(self) -> str:
        """What the target chooser shows."""
        if self.population_status is PopulationStatus.POPULATED:
            return f"{self.title} — {self.audience:,} members"
        if self.population_status is PopulationStatus.POPULATING:
            return f"{self.title} — being counted"
        return f"{self.title} — not counted yet"


@dataclass(frozen=True, slots=True)
class BidInfo:
    """What a campaign pays in one band, in cents."""

    band_id: int
    level: int
    offer_amount_cents: int
    marketer_cost_cents: int

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> BidInfo:
        return cls(
            int(data["band_id"]),
            int(data.get("level") or 0),
            int(data["offer_amount_cents"]),
            int(data["marketer_cost_cents"]),
        )


@dataclass(frozen=True, slots=True)
class CampaignDetails:
    """One campaign as `GET /api/campaigns/{id}` answers it: the row and its bids."""

    campaign: Campaign
    bids: tuple[BidInfo, ...]

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> CampaignDetails:
        bids = sorted(
            (BidInfo.from_wire(bid) for bid in data.get("bids") or ()), key=lambda b: b.level
        )
        return cls(Campaign.from_wire(data), tuple(bids))


# ---- the campaign form ----------------------------------------------------------------


@dataclass(slots=True)
class BidEntry:
    """One band's row of the form: the two amounts as typed."""

    band_id: int
    level: int
    name: str
    offer: str = ""
    cost: str = ""

    def text(self, name: str) -> str:
        return self.offer if name == "offer_amount_cents" else self.cost


@dataclass(slots=True)
class CampaignForm:
    """What the New / Edit campaign dialog holds. Dates are aware datetimes."""

    title: str = ""
    description: str = ""
    target: TargetChoice | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    bids: list[BidEntry] = field(default_factory=list)
    bids_locked: bool = False  # launched: the bids may no longer change


def bid_entries(bands: Sequence[BandChoice], bids: Sequence[BidInfo] = ()) -> list[BidEntry]:
    """A row per band, bullseye first, filled in from `bids` where a band has one."""
    by_band = {bid.band_id: bid for bid in bids}
    entries = []
    for band in sorted(bands, key=lambda b: b.level):
        bid = by_band.get(band.id)
        entries.append(
            BidEntry(
                band.id,
                band.level,
                band.name,
                money_input(bid.offer_amount_cents) if bid else "",
                money_input(bid.marketer_cost_cents) if bid else "",
            )
        )
    return entries


def bid_key(index: int, name: str) -> str:
    return f"bids.{index}.{name}"


def validate(form: CampaignForm) -> Errors:
    """Everything the server would refuse in `form`, by field; empty when it may be sent."""
    errors: Errors = {}
    title = form.title.strip()
    if not title:
        errors["title"] = "Enter a title"
    elif len(title) > TITLE_MAX:
        errors["title"] = f"At most {TITLE_MAX} characters (now {len(title):,})"
    elif "\x00" in title:
        errors["title"] = "May not contain a NUL character"
    if len(form.description) > DESCRIPTION_MAX:
        errors["description"] = (
            f"At most {DESCRIPTION_MAX:,} characters (now {len(form.description):,})"
        )
    if form.target is None:
        errors["target_id"] = "Choose a target"
    if form.starts_at is None:
        errors["starts_at"] = "Choose when the campaign starts"
    if form.ends_at is None:
        errors["ends_at"] = "Choose when the campaign ends"
    elif form.starts_at is not None and form.ends_at <= form.starts_at:
        errors["ends_at"] = "Must be after the start"
    if not form.bids_locked:
        errors.update(_bid_errors(form))
    return errors


def _bid_errors(form: CampaignForm) -> Errors:
    errors: Errors = {}
    if form.target is not None and not form.bids:
        errors["bids"] = "This target has no bands: choose another target"
        return errors
    if len(form.bids) > BIDS_MAX:
        errors["bids"] = f"At most {BIDS_MAX} bands"
        return errors
    amounts: dict[tuple[int, str], int] = {}
    for index, entry in enumerate(form.bids):
        for name in BID_FIELDS:
            try:
                cents = parse_money(entry.text(name))
            except ValueError as exc:
                errors[bid_key(index, name)] = str(exc)
                continue
            if cents < 1:
                errors[bid_key(index, name)] = "Must be above 0"
            elif cents > BID_MAX_CENTS:
                errors[bid_key(index, name)] = f"At most {money(BID_MAX_CENTS)}"
            else:
                amounts[(index, name)] = cents
    for index in range(1, len(form.bids)):
        inner = form.bids[index - 1]
        for name in BID_FIELDS:
            outer_cents, inner_cents = amounts.get((index, name)), amounts.get((index - 1, name))
            if outer_cents is None or inner_cents is None or outer_cents <= inner_cents:
                continue
            errors[bid_key(index, name)] = (
                f"More than {inner.name}'s {money(inner_cents)}: "
                "bids may not rise from the bullseye outward"
            )
    return errors


def _moment(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _bids_body(form: CampaignForm) -> list[dict[str, int]]:
    return [
        {
            "band_id": entry.band_id,
            "offer_amount_cents": parse_money(entry.offer),
            "marketer_cost_cents": parse_money(entry.cost),
        }
        for entry in form.bids
    ]


def create_body(form: CampaignForm) -> dict[str, Any]:
    """The body of `POST /api/campaigns` for a valid form."""
    assert form.target is not None and form.starts_at and form.ends_at, "validate first"
    return {
        "title": form.title.strip(),
        "description": form.description,
        "target_id": form.target.id,
        "starts_at": _moment(form.starts_at),
        "ends_at": _moment(form.ends_at),
        "bids": _bids_body(form),
    }


def patch_body(form: CampaignForm, original: CampaignForm) -> dict[str, Any]:
    """The body of `PATCH /api/campaigns/{id}`: only what changed (empty: nothing did)."""
    body: dict[str, Any] = {}
    if form.title.strip() != original.title.strip():
        body["title"] = form.title.strip()
    if form.description != original.description:
        body["description"] = form.description
    for name in ("starts_at", "ends_at"):
        value = getattr(form, name)
        if value is not None and value != getattr(original, name):
            body[name] = _moment(value)
    if not form.bids_locked:
        bids = _bids_body(form)
        if bids != _bids_body_or_none(original):
            body["bids"] = bids
    return body


def _bids_body_or_none(form: CampaignForm) -> list[dict[str, int]] | None:
    try:
        return _bids_body(form)
    except ValueError:
        return None


def field_key(location: Sequence[str | int]) -> str:
    """The form's key for a 422's `loc` (`["body", "bids", 1, "band_id"]` → `bids.1.band_id`);
    `""` when it names no field."""
    parts = [str(part) for part in location]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts)


# ---- the deposit form -----------------------------------------------------------------


def validate_deposit(amount: str, note: str) -> Errors:
    errors: Errors = {}
    try:
        cents = parse_money(amount)
    except ValueError as exc:
        errors["amount_cents"] = str(exc)
    else:
        if cents < 1:
            errors["amount_cents"] = "Must be above 0"
        elif cents > DEPOSIT_MAX_CENTS:
            errors["amount_cents"] = f"At most {money(DEPOSIT_MAX_CENTS)} at once"
    if len(note) > NOTE_MAX:
        errors["note"] = f"At most {NOTE_MAX} characters (now {len(note):,})"
    elif "\x00" in note:
        errors["note"] = "May not contain a NUL character"
    return errors


def deposit_body(amount: str, note: str) -> dict[str, Any]:
    """The body of `POST /api/campaigns/{id}/deposits` for valid input."""
    body: dict[str, Any] = {"amount_cents": parse_money(amount)}
    if note.strip():
        body["note"] = note.strip()
    return body
