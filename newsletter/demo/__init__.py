"""`newsletter demo`: the whole cycle on built-in defaults, with a capture SMTP server."""
