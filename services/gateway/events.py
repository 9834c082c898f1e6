"""Events the gateway publishes: none yet.

Logins, logouts and staff account changes are recorded in the gateway's audit log, not on
Kafka. An event the gateway ever publishes gets its payload model here, registered with
``@event_type`` (docs/architecture.md §5).
"""
