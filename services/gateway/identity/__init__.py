"""Who may come in: patient and staff accounts, login codes, passwords and tokens."""
