"""Demo relying party and launcher used by `make run`."""
