"""Durable storage (SQLAlchemy), the ephemeral store and key storage."""
