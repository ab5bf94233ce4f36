"""Readers: signup with double opt-in, confirmation, preferences, unsubscribe, erasure."""
