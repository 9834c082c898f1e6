"""CareLoop referrals: two-way referrals in the medical alliance."""
