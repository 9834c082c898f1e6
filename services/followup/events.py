"""The events the followup service publishes (payload models with ``@event_type``)."""
