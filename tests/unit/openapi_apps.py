"""Every service app, built without I/O (create_app does none), for OpenAPI checks."""

from __future__ import annotations

from fastapi import FastAPI

from services.appointments.app import create_app as appointments_app
from services.appointments.settings import AppointmentsSettings
from services.followup.app import create_app as followup_app
from services.followup.settings import FollowupSettings
from services.gateway.app import create_app as gateway_app
from services.gateway.settings import GatewaySettings
from services.notifications.app import create_app as notifications_app
from services.notifications.settings import NotificationsSettings
from services.referrals.app import create_app as referrals_app
from services.referrals.settings import ReferralsSettings
from shared.auth import generate_ed25519_keypair
from shared.crypto import generate_key


def build_apps() -> dict[str, FastAPI]:
    """One app per service, named as in ``/v1/<name>``, on throwaway keys."""
    private, public = generate_ed25519_keypair()
    keys, hashed = f"k1:{generate_key()}", generate_key()
    common = {"jwt_public_key": public, "pii_encryption_keys": keys, "pii_hash_key": hashed}
    return {
        "appointments": appointments_app(AppointmentsSettings.model_validate(common)),
        "notifications": notifications_app(NotificationsSettings.model_validate(common)),
        "referrals": referrals_app(ReferralsSettings.model_validate(common)),
        "followup": followup_app(FollowupSettings.model_validate(common)),
        "gateway": gateway_app(
            GatewaySettings.model_validate({**common, "jwt_private_key": private})
        ),
    }
