"""HTTP routes of the appointments service: thin, the logic lives in the modules above."""
