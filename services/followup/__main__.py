"""``python -m services.followup``"""

from services.followup.app import create_app
from services.followup.settings import FollowupSettings
from shared.runner import run_service

if __name__ == "__main__":
    run_service(create_app, FollowupSettings())
