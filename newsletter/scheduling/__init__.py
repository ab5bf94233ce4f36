"""Scheduling: APScheduler wiring only; the jobs call the services."""
