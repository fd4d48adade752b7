"""The roles a user holds inside their marketer, and what each may do."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    VIEWER = "viewer"


class Permission(StrEnum):
    """A kind of write; reading the marketer's data needs no permission beyond logging in."""

    MANAGE_CAMPAIGNS = "manage_campaigns"  # create, edit, launch, refresh, pause, resume, archive
    CREATE_TARGETS = "create_targets"
    MANAGE_USERS = "manage_users"
    DEPOSIT = "deposit"


_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset(),
    Role.MANAGER: frozenset({Permission.MANAGE_CAMPAIGNS, Permission.CREATE_TARGETS}),
    Role.ADMIN: frozenset(Permission),
}

_WHAT = {
    Permission.MANAGE_CAMPAIGNS: "change campaigns",
    Permission.CREATE_TARGETS: "create targets",
    Permission.MANAGE_USERS: "manage users",
    Permission.DEPOSIT: "make deposits",
}
_WHO = {
    Permission.MANAGE_CAMPAIGNS: "a manager or an admin",
    Permission.CREATE_TARGETS: "a manager or an admin",
    Permission.MANAGE_USERS: "an admin",
    Permission.DEPOSIT: "an admin",
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in _GRANTS[role]


def denial(role: Role, permission: Permission) -> str:
    """Why `role` may not do it, in words a user can act on (a 403 detail, a tooltip)."""
    return (
        f"your role ({role.value}) may not {_WHAT[permission]}: ask {_WHO[permission]} "
        "of your company"
    )
