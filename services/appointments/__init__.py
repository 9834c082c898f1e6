"""CareLoop appointments: outpatient and exam booking."""
