"""CareLoop's platform library: what every service is built from (docs/architecture.md §5-§9)."""
