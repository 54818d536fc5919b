"""HTTP load driver for the OpenID Connect provider: see bench/README.md."""
