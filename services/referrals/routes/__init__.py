"""The referrals service's HTTP routes (thin: they call the feature modules)."""
