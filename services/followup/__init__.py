"""CareLoop followup: post-discharge follow-up, surveys and complaints."""
