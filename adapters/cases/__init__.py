"""The case service (办件): applications for catalogue items, their life cycle, e-certificates by token exchange."""

from adapters.cases.app import create_app

__all__ = ["create_app"]
