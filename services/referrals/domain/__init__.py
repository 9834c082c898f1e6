"""The referrals service's pure rules and its own errors (no FastAPI, Mongo or Redis imports)."""
