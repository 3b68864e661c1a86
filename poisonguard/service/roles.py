"""Roles, from least to most privileged; each includes everything below it.

``viewer`` reads; ``contributor`` uploads data and starts scans, checks and
snapshots; ``curator`` also approves, quarantines and releases rows; ``admin``
also manages users, tokens and dataset grants and sees every dataset.
"""

from __future__ import annotations

from enum import IntEnum

from poisonguard.errors import UsageError

__all__ = ["ROLE_NAMES", "Role"]


class Role(IntEnum):
    """An ordered role: ``Role.curator >= Role.contributor``.

    Examples
    --------
    >>> Role.parse("curator") > Role.viewer
    True
    """

    viewer = 1
    contributor = 2
    curator = 3
    admin = 4

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name]
        except KeyError:
            raise UsageError(f"unknown role {name!r} (expected one of "
                             f"{', '.join(ROLE_NAMES)})") from None

    def below(self) -> Role | None:
        """The next smaller role (None for viewer)."""
        return Role(self - 1) if self > Role.viewer else None


ROLE_NAMES = tuple(r.name for r in Role)
