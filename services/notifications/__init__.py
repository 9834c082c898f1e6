"""CareLoop notifications: messages to patients on every channel."""
