"""OAuth 2.0 / OpenID Connect wiring on top of Authlib."""
