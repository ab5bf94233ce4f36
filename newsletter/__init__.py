"""Self-hosted daily news digests delivered over SMTP."""

__version__ = "0.1.0"
