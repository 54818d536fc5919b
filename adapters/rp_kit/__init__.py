"""The relying-party kit: any Flask platform signs people in with the provider and checks its tokens."""

from adapters.rp_kit.provider import Provider, ProviderError, TokenEndpointError, TokenExchangeError
from adapters.rp_kit.relying_party import BearerError, RelyingParty, current_token, current_user, safe_next
from adapters.rp_kit.sessions import MemorySessionStore, RedisSessionStore, SessionStore
from adapters.rp_kit.tokens import InvalidToken, verify_access_token, verify_id_token, verify_logout_token

__all__ = [
    "BearerError",
    "InvalidToken",
    "MemorySessionStore",
    "Provider",
    "ProviderError",
    "RedisSessionStore",
    "RelyingParty",
    "SessionStore",
    "TokenEndpointError",
    "TokenExchangeError",
    "current_token",
    "current_user",
    "safe_next",
    "verify_access_token",
    "verify_id_token",
    "verify_logout_token",
]
