"""Pure domain: persons, clients, sessions, identifiers; stdlib only."""
