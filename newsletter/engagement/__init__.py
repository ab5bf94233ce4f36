"""Engagement without tracking who readers are: signed redirects that count clicks per article
and edition (and, where a newsletter tracks per reader, whose), filtered of scanners and bots."""
