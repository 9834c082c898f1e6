"""Security tests: the authorization matrix (OWASP API1 BOLA, API3, API5)."""
