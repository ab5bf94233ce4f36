"""What is personal in mail: signed tokens, the links built on them, Message-IDs, and the
per-recipient fields of a message. Below delivery, editions and subscriptions, which all use it."""
