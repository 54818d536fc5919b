"""Identity sources: where a person's credentials and identity are checked."""
