"""The web app: signup pages, one-click unsubscribe, health, metrics and the admin API."""

from newsletter.web.app import create_app

__all__ = ["create_app"]
