"""Editions: which articles go in, building an edition's variants and enqueueing its deliveries."""
