"""The operator console: accounts and roles, their sessions, and the audit trail of what they did."""
