"""Which campaign actions a user may take now, and why not, in words for a tooltip.

The role rules are `pulse_core.roles` (the server's own); this module only maps each action
to its permission and to the campaign states it fits.
"""

from __future__ import annotations

from enum import StrEnum

from desktop.client.models import Campaign
from pulse_core import messages
from pulse_core.roles import Permission, Role, allows, denial
from pulse_core.stats import CampaignState


class CampaignAction(StrEnum):
    NEW = "new"
    EDIT = "edit"
    LAUNCH = "launch"
    REFRESH = "refresh"
    PAUSE = "pause"
    RESUME = "resume"
    ARCHIVE = "archive"
    DEPOSIT = "deposit"


PERMISSIONS = {
    action: Permission.DEPOSIT if action is CampaignAction.DEPOSIT else Permission.MANAGE_CAMPAIGNS
    for action in CampaignAction
}

_ALL = frozenset(CampaignState)
_FITS: dict[CampaignAction, frozenset[CampaignState]] = {
    CampaignAction.NEW: _ALL,
    CampaignAction.EDIT: _ALL - {CampaignState.ARCHIVED},
    CampaignAction.LAUNCH: frozenset({CampaignState.NOT_LAUNCHED}),
    CampaignAction.REFRESH: frozenset({CampaignState.ACTIVE}),
    CampaignAction.PAUSE: frozenset({CampaignState.ACTIVE}),
    CampaignAction.RESUME: frozenset({CampaignState.PAUSED}),
    CampaignAction.ARCHIVE: frozenset({CampaignState.ACTIVE, CampaignState.PAUSED}),
    CampaignAction.DEPOSIT: _ALL - {CampaignState.ARCHIVED},
}

# What a user is told when an action does not fit the campaign's state (the server's words).
_NOT_NOW: dict[CampaignAction, dict[CampaignState, str]] = {
    CampaignAction.LAUNCH: {
        CampaignState.ACTIVE: messages.ALREADY_LAUNCHED,
        CampaignState.PAUSED: messages.ALREADY_LAUNCHED,
    },
    CampaignAction.REFRESH: {
        CampaignState.NOT_LAUNCHED: messages.MUST_LAUNCH_FIRST,
        CampaignState.PAUSED: messages.PAUSED + ": resume it first",
    },
    CampaignAction.PAUSE: {
        CampaignState.NOT_LAUNCHED: messages.MUST_LAUNCH_FIRST,
        CampaignState.PAUSED: messages.ALREADY_PAUSED,
    },
    CampaignAction.RESUME: {
        CampaignState.NOT_LAUNCHED: messages.NOT_PAUSED,
        CampaignState.ACTIVE: messages.NOT_PAUSED,
    },
    CampaignAction.ARCHIVE: {CampaignState.NOT_LAUNCHED: messages.ONLY_LAUNCHED_ARCHIVED},
}


def role_refusal(role: Role | None, action: CampaignAction) -> str | None:
    """Why `role` may not take `action` (a sentence), or None when it may.

    An unknown role (a server that did not say) is let through: the server checks every write.
    """
    permission = PERMISSIONS[action]
    if role is None or allows(role, permission):
        return None
    reason = denial(role, permission)
    return reason[:1].upper() + reason[1:] + "."


def state_refusal(action: CampaignAction, campaign: Campaign) -> str | None:
    """Why `action` does not fit the campaign's state now, or None when it does."""
    if campaign.state in _FITS[action]:
        return None
    if campaign.state is CampaignState.ARCHIVED:
        return messages.ARCHIVED
    return _NOT_NOW.get(action, {}).get(campaign.state, f"Campaign is {campaign.state.label}")


def may_create(role: Role | None) -> bool:
    return role_refusal(role, CampaignAction.NEW) is None


def forbidden_text(what: str, reason: str) -> str:
    """A 403 for the user: `You cannot launch the campaign: <the server's reason>`."""
    return f"You cannot {what}: {reason}"
