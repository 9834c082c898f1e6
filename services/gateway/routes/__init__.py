"""The gateway's own endpoints: logins (``/v1/auth``) and staff accounts (admins)."""
