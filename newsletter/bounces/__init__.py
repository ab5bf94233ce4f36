"""Bounces and complaints that arrive after acceptance: what each returned message says."""
