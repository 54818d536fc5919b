"""Relying-party side: the public kit (`adapters.rp_kit`) and the platforms built on it, which know the provider over the wire only."""
