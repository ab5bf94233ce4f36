"""Delivery: the ledger, the SMTP pool, the worker loop, failure classification."""
