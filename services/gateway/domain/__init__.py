"""The gateway's pure rules: which rate-limit class a request belongs to (``endpoints``)."""
