"""Topic names and the rule of who may read which topic."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pulse_core.names import CAMPAIGN_TOPIC_PREFIX, MARKETER_TOPIC_PREFIX, MARKETER_TOPIC_SUFFIX

_CAMPAIGN_RE = re.compile(r"campaign:([1-9][0-9]{0,17})")
_MARKETER_RE = re.compile(r"marketer:([1-9][0-9]{0,17}):campaigns")
MAX_TOPIC_LENGTH = 64


def campaign_topic(campaign_id: int) -> str:
    """`campaign:<id>`: every event about one campaign, for its detail view."""
    return f"{CAMPAIGN_TOPIC_PREFIX}{campaign_id}"


def marketer_topic(marketer_id: int) -> str:
    """`marketer:<id>:campaigns`: every event about any campaign of one marketer."""
    return f"{MARKETER_TOPIC_PREFIX}{marketer_id}{MARKETER_TOPIC_SUFFIX}"


def topics_for_campaign(campaign_id: int, marketer_id: int) -> tuple[str, str]:
    """Both topics that every event about a campaign is published on."""
    return campaign_topic(campaign_id), marketer_topic(marketer_id)


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed topic: exactly one of `campaign_id` and `marketer_id` is set."""

    name: str
    campaign_id: int | None = None
    marketer_id: int | None = None


class TopicError(ValueError):
    """The text is not a topic of this product."""


def parse_topic(name: object) -> Topic:
    """Parse a topic name, or raise `TopicError` saying what a topic looks like."""
    if not isinstance(name, str) or len(name) > MAX_TOPIC_LENGTH:
        raise TopicError("topic must be a string such as 'campaign:12' or 'marketer:3:campaigns'")
    if match := _CAMPAIGN_RE.fullmatch(name):
        return Topic(name=name, campaign_id=int(match.group(1)))
    if match := _MARKETER_RE.fullmatch(name):
        return Topic(name=name, marketer_id=int(match.group(1)))
    raise TopicError(f"unknown topic {name!r}: use 'campaign:<id>' or 'marketer:<id>:campaigns'")
