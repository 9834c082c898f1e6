"""CareLoop's platform library: what every service is built from (DESIGN.md §5-§9)."""
