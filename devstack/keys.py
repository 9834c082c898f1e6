"""Development secrets for ``make up``: JWT key pair, PII keys, first admin; made once.

They live under the git-ignored state folder. Production takes its own from secrets.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from shared.auth import generate_ed25519_keypair
from shared.crypto import generate_key


@dataclass(frozen=True)
class DevSecrets:
    jwt_private_key_file: Path
    jwt_public_key_file: Path
    pii_encryption_keys: str
    pii_hash_key: str
    admin_username: str = "admin"
    admin_password: str = ""


def ensure_dev_secrets(state_dir: Path) -> DevSecrets:
    keys = state_dir / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    private, public = keys / "jwt_private.pem", keys / "jwt_public.pem"
    if not private.exists():
        private_pem, public_pem = generate_ed25519_keypair()
        private.write_text(private_pem)
        private.chmod(0o600)
        public.write_text(public_pem)
    pii = keys / "pii.json"
    if not pii.exists():
        pii.write_text(
            json.dumps({"encryption_keys": f"dev1:{generate_key()}", "hash_key": generate_key()})
        )
        pii.chmod(0o600)
    values = json.loads(pii.read_text())
    admin = keys / "admin.json"  # the first admin of a fresh gateway database
    if not admin.exists():
        password = "Dev-" + secrets.token_urlsafe(12)
        admin.write_text(json.dumps({"username": "admin", "password": password}))
        admin.chmod(0o600)
    first = json.loads(admin.read_text())
    return DevSecrets(
        private,
        public,
        values["encryption_keys"],
        values["hash_key"],
        admin_username=first["username"],
        admin_password=first["password"],
    )
