"""The HTTP edge of the appointments domain's errors (``shared.domain_problems``)."""

from shared.domain_problems import handle_domain_error, to_problem

__all__ = ["handle_domain_error", "to_problem"]
