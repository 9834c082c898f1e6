"""``python -m services.gateway``"""

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.runner import run_service

if __name__ == "__main__":
    run_service(create_app, GatewaySettings())  # type: ignore[arg-type]
