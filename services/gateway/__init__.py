"""CareLoop gateway: the one front door (routing, readiness of the whole system, API docs)."""
