"""Development secrets for ``make up``: JWT key pair, PII keys, first admin; made once.

They live under the git-ignored state folder. Production takes its own from secrets.
They only fill in what the operator has not set: a ``CARELOOP_<SERVICE>_PII_ENCRYPTION_KEYS``
(or any other secret variable below) in the environment of ``make up`` wins over the file, so
key rotation as the README describes it takes effect (:func:`secret_env`).

Every key made here is marked as a development key, and a service with
``environment=production`` refuses to start with one (``shared/settings.py``): the PII key id
is ``dev1``, the hash key is labelled ``dev:``, the PEM files start with a marker line.
Files made before the marks existed get them the next time (the key material stays).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shared.auth import generate_ed25519_keypair
from shared.crypto import generate_key, split_hash_key_label
from shared.settings import DEV_HASH_KEY_LABEL, DEV_PASSWORD_PREFIX, DEV_PEM_MARKER


@dataclass(frozen=True)
class DevSecrets:
    jwt_private_key_file: Path
    jwt_public_key_file: Path
    pii_encryption_keys: str
    pii_hash_key: str
    admin_username: str = "admin"
    admin_password: str = ""


def secret_env(
    prefix: str, secrets: DevSecrets, *, gateway: bool, environ: Mapping[str, str]
) -> dict[str, str]:
    """The secret variables (``prefix`` + name) of one process, from the dev files, for
    those that ``environ`` (the operator's environment) does not set already."""
    values = {
        "JWT_PUBLIC_KEY_FILE": str(secrets.jwt_public_key_file),
        "PII_ENCRYPTION_KEYS": secrets.pii_encryption_keys,
        "PII_HASH_KEY": secrets.pii_hash_key,
    }
    if gateway:
        values["JWT_PRIVATE_KEY_FILE"] = str(secrets.jwt_private_key_file)
        values["BOOTSTRAP_ADMIN_USERNAME"] = secrets.admin_username
        values["BOOTSTRAP_ADMIN_PASSWORD"] = secrets.admin_password
    named = {prefix + key: value for key, value in values.items()}
    return {key: value for key, value in named.items() if not environ.get(key)}


def _mark_pem(path: Path) -> None:
    """Put the development mark before the key (PEM readers skip text before it)."""
    text = path.read_text()
    if DEV_PEM_MARKER not in text:
        path.write_text(f"{DEV_PEM_MARKER}\n{text}")


def ensure_dev_secrets(state_dir: Path) -> DevSecrets:
    keys = state_dir / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    private, public = keys / "jwt_private.pem", keys / "jwt_public.pem"
    if not private.exists():
        private_pem, public_pem = generate_ed25519_keypair()
        private.write_text(private_pem)
        private.chmod(0o600)
        public.write_text(public_pem)
    for pem in (private, public):
        _mark_pem(pem)
    pii = keys / "pii.json"
    if not pii.exists():
        pii.write_text(
            json.dumps(
                {
                    "encryption_keys": f"dev1:{generate_key()}",
                    "hash_key": f"{DEV_HASH_KEY_LABEL}:{generate_key()}",
                }
            )
        )
        pii.chmod(0o600)
    values = json.loads(pii.read_text())
    if not split_hash_key_label(values["hash_key"])[0]:  # made before the mark: same key
        values["hash_key"] = f"{DEV_HASH_KEY_LABEL}:{values['hash_key']}"
        pii.write_text(json.dumps(values))
    admin = keys / "admin.json"  # the first admin of a fresh gateway database
    if not admin.exists():
        password = DEV_PASSWORD_PREFIX + secrets.token_urlsafe(12)
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
