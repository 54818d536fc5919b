"""Unified identity authentication and single sign-on for online government services."""
