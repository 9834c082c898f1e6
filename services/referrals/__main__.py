"""``python -m services.referrals``"""

from services.referrals.app import create_app
from services.referrals.settings import ReferralsSettings
from shared.runner import run_service

if __name__ == "__main__":
    run_service(create_app, ReferralsSettings())
