"""The events the referrals service publishes (payload models with ``@event_type``)."""
