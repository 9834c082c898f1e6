"""``python -m services.appointments``"""

from services.appointments.app import create_app
from services.appointments.settings import AppointmentsSettings
from shared.runner import run_service

if __name__ == "__main__":
    run_service(create_app, AppointmentsSettings())
