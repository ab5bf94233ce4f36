"""Providers' bounce and complaint webhooks: each one's authentication checked, its events read
as `Incoming` values for the one recorder (the routes are in `newsletter/web/webhooks.py`)."""
