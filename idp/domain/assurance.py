"""Levels of assurance (acr) and how they compare; names configurable, order is strength."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

LOA1 = "urn:cn:gov:loa:1"  # self-registered, password only
LOA2 = "urn:cn:gov:loa:2"  # real-name verified identity, password
LOA3 = "urn:cn:gov:loa:3"  # level 2 plus a second factor

# amr values (RFC 8176) that count as a second factor beside the password; "rec" (a single-use
# recovery code) is ours, not registered. A deployment adding a factor adds its amr value here.
SECOND_FACTORS = frozenset({"otp", "rec"})


@dataclass(frozen=True)
class AssuranceLadder:
    levels: tuple[str, ...] = (LOA1, LOA2, LOA3)

    def rank(self, acr: str | None) -> int:
        return self.levels.index(acr) if acr in self.levels else -1

    def required(self, acr_values: tuple[str, ...]) -> str | None:
        """The weakest known level among the requested ones (acr_values are alternatives), or None."""
        known = [a for a in acr_values if a in self.levels]
        return min(known, key=self.rank) if known else None

    def strongest(self, *levels: str | None) -> str | None:
        known = [level for level in levels if level in self.levels]
        return max(known, key=self.rank) if known else None

    def satisfies(self, have: str | None, required: str | None) -> bool:
        return required is None or self.rank(have) >= self.rank(required)

    def acr_for(self, verified: bool, amr: Collection[str]) -> str:
        weakest, verified_level, with_factor = self.levels
        return acr_for(verified, amr, (weakest, verified_level, with_factor))


def has_second_factor(amr: Collection[str]) -> bool:
    return not SECOND_FACTORS.isdisjoint(amr)


def acr_for(verified: bool, amr: Collection[str], levels: tuple[str, str, str] = (LOA1, LOA2, LOA3)) -> str:
    """The level a login reached: level 3 is level 2 plus a second factor, so an unverified person
    stays at level 1 whatever factors they used. `levels` are the configured names, weakest first."""
    if not verified:
        return levels[0]
    return levels[2] if has_second_factor(amr) else levels[1]
