"""Settings of the referrals service (environment prefix ``CARELOOP_REFERRALS_``)."""

from __future__ import annotations

from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class RoutingWeights(BaseModel):
    """How much each signal counts in a candidate's score (each signal is scaled to 0..1)."""

    pool: float = Field(0.4, ge=0)  # free referral-pool numbers in the next 14 days
    load: float = Field(0.2, ge=0)  # fewer open cases is better
    acceptance: float = Field(0.25, ge=0)  # past acceptance rate
    response: float = Field(0.15, ge=0)  # past median time to accept: faster is better


class SlaMinutes(BaseModel):
    """Acceptance deadlines by urgency (an organization's intake settings may override)."""

    emergency: float = Field(30, gt=0)
    urgent: float = Field(120, gt=0)
    routine: float = Field(24 * 60, gt=0)


class TransportDeadlines(BaseModel):
    """A transport's response (a porter accepted) and pickup (the porter has the patient)
    deadlines in minutes, by priority (``domain/transport.py``)."""

    response: float = Field(gt=0)
    pickup: float = Field(gt=0)


class TransportMinutes(BaseModel):
    emergency: TransportDeadlines = TransportDeadlines(response=5, pickup=15)
    urgent: TransportDeadlines = TransportDeadlines(response=10, pickup=30)
    routine: TransportDeadlines = TransportDeadlines(response=30, pickup=60)


class ReferralsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CARELOOP_REFERRALS_", extra="ignore", frozen=True)

    service_name: str = "referrals"
    http_port: int = 8102

    routing_weights: RoutingWeights = Field(default_factory=RoutingWeights)
    sla_minutes: SlaMinutes = Field(default_factory=SlaMinutes)
    # after the deadline the receiving coordinator is told; this long after, the case moves on
    reroute_after_escalation_minutes: float = Field(30, gt=0)
    pool_horizon_days: int = Field(14, ge=1, le=90)  # the referral pool opens 14 days early
    stats_window_days: int = Field(90, ge=1)  # past acceptance rate and response time
    transport_minutes: TransportMinutes = Field(default_factory=TransportMinutes)
    porter_max_load: int = Field(2, ge=1)  # live jobs a porter carries before none is added
    # a transport tied to an exam picks the patient up this long before the exam starts
    transport_lead_minutes: float = Field(30, ge=0)
