"""The web archive: each published edition as a page without personal data, an index, a feed."""
