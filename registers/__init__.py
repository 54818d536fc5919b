"""The reference register service: a small population register and enterprise register for development and tests."""
