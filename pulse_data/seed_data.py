"""The demo world of `pulse seed --demo`: companies, logins, traits, targets and campaigns."""

from __future__ import annotations

from dataclasses import dataclass

from pulse_core.roles import Role
from pulse_core.stats import CampaignState

DEMO_PASSWORD = "pulse-demo"

INTERESTS = (
    "Hiking", "Camping", "Cycling", "Cooking", "Baking",
    "Travel", "Gaming", "Fitness", "Gardening", "Music",
)  # fmt: skip
TRAIT_GROUPS: dict[str, tuple[str, ...]] = {
    "Age": ("18-24", "25-34", "35-44", "45-54", "55-64", "65+"),
    "Region": ("Northeast", "Southeast", "Midwest", "Southwest", "West", "Mountain"),
    "Interests": INTERESTS,
    "Household": ("Single", "Couple", "Family with kids", "Retired"),
}
# Members have one value of each group except Interests, of which they have one to three.
MULTI_VALUED_GROUP = "Interests"
MAX_INTERESTS = 3


@dataclass(frozen=True, slots=True)
class DemoTarget:
    key: str
    title: str
    # Trait group -> accepted traits, in ring order: the last group is dropped first.
    groups: tuple[tuple[str, tuple[str, ...]], ...]
    populated: bool


@dataclass(frozen=True, slots=True)
class DemoCampaign:
    title: str
    description: str
    target: str
    state: CampaignState
    # (offer amount, marketer cost) in cents for the bullseye; each ring outward pays less.
    bullseye_bid: tuple[int, int] = (150, 200)


@dataclass(frozen=True, slots=True)
class DemoMarketer:
    name: str
    users: tuple[tuple[str, str, Role], ...]  # email, name, role
    targets: tuple[DemoTarget, ...]
    campaigns: tuple[DemoCampaign, ...]


ACTIVE, NOT_LAUNCHED, ARCHIVED = (
    CampaignState.ACTIVE,
    CampaignState.NOT_LAUNCHED,
    CampaignState.ARCHIVED,
)

MARKETERS = (
    DemoMarketer(
        name="Acme Outdoor",
        users=(
            ("alice@acme.example", "Alice Archer", Role.ADMIN),
            ("bob@acme.example", "Bob Baker", Role.MANAGER),
            ("dave@acme.example", "Dave Dawson", Role.VIEWER),
        ),
        targets=(
            DemoTarget(
                "acme-adventurers",
                "Outdoor adventurers",
                (
                    ("Interests", ("Hiking", "Camping", "Cycling")),
                    ("Region", ("West", "Mountain", "Northeast")),
                    ("Age", ("25-34", "35-44")),
                ),
                populated=True,
            ),
            DemoTarget(
                "acme-families",
                "Young families outdoors",
                (
                    ("Household", ("Family with kids",)),
                    ("Interests", ("Camping", "Hiking", "Fitness")),
                    ("Region", ("Midwest", "Southeast", "Southwest")),
                ),
                populated=False,
            ),
        ),
        campaigns=(
            DemoCampaign("Spring Trail Sale", "20% off trail shoes", "acme-adventurers", ACTIVE),
            DemoCampaign(
                "Summer Camping Gear", "Tents and stoves", "acme-adventurers", ACTIVE, (120, 160)
            ),
            DemoCampaign(
                "Bike Tune-up Week",
                "Free tune-up with any helmet",
                "acme-adventurers",
                NOT_LAUNCHED,
            ),
            DemoCampaign("Family Weekend Packs", "Gear for four", "acme-families", NOT_LAUNCHED),
            DemoCampaign("Kids Hiking Club", "Junior ranger kits", "acme-families", NOT_LAUNCHED),
            DemoCampaign("Winter Clearance", "Last season's jackets", "acme-adventurers", ARCHIVED),
        ),
    ),
    DemoMarketer(
        name="Globex Foods",
        users=(("carol@globex.example", "Carol Chen", Role.ADMIN),),
        targets=(
            DemoTarget(
                "globex-cooks",
                "Home cooks",
                (
                    ("Interests", ("Cooking", "Baking")),
                    ("Household", ("Family with kids", "Couple")),
                    ("Age", ("35-44", "45-54", "55-64")),
                ),
                populated=True,
            ),
            DemoTarget(
                "globex-snackers",
                "Snackers on the go",
                (
                    ("Age", ("18-24", "25-34")),
                    ("Interests", ("Gaming", "Music", "Travel")),
                    ("Household", ("Single", "Couple")),
                ),
                populated=False,
            ),
        ),
        campaigns=(
            DemoCampaign("Weeknight Dinners", "Meal kits in 20 minutes", "globex-cooks", ACTIVE),
            DemoCampaign(
                "Holiday Baking Club", "Flour, sugar, joy", "globex-cooks", ACTIVE, (100, 140)
            ),
            DemoCampaign(
                "Game Night Snacks", "Crunch for the party", "globex-snackers", NOT_LAUNCHED
            ),
            DemoCampaign("Road Trip Bites", "Snacks that travel", "globex-snackers", NOT_LAUNCHED),
            DemoCampaign("Summer BBQ 2024", "Sauces and rubs", "globex-cooks", ARCHIVED),
        ),
    ),
)

DEPOSIT_CENTS = 500_000
DEPOSIT_DESCRIPTION = "Deposit"
# Each ring outward pays this share of the ring inside it.
RING_BID_FACTOR = 0.7
