"""The files of examples/production/ and what a test needs to run them: a DKIM key, secrets."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.process import clean_environment

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ROOT / "examples" / "production"
CONFIG = PRODUCTION / "newsletter.toml"
ENV_EXAMPLE = PRODUCTION / "env.example"
UNIT = PRODUCTION / "newsletter.service"
NGINX_SITE = PRODUCTION / "nginx.conf"
README = PRODUCTION / "README.md"

PUBLIC_HOST = "news.londondaily.example"
SECRET_KEY = "prod-secret-key-3f9a61c0d2b7e845"
ADMIN_TOKEN = "prod-admin-token-8c1e47b9a05d36f2"


def write_dkim_key(folder: Path) -> Path:
    """A new RSA-2048 private key (PKCS#8 PEM, unencrypted, owner-only), as dkim.private_key_file."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = folder / "dkim.pem"
    path.touch(mode=0o600)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def production_environment(dkim_key: Path, **extra: str) -> dict[str, str]:
    """What /etc/newsletter/env and the machine provide, for this checkout: the secrets, the
    DKIM key's path in place of /etc/newsletter/dkim/news2026.pem, and the bounce receiver on
    a loopback port of the system's choosing (tests run side by side)."""
    return clean_environment(
        NEWSLETTER_BOUNCES__HOST="127.0.0.1",
        NEWSLETTER_BOUNCES__PORT="0",
        NEWSLETTER_SECURITY__SECRET_KEY=SECRET_KEY,
        NEWSLETTER_SECURITY__ADMIN_TOKEN=ADMIN_TOKEN,
        NEWSLETTER_SMTP__PASSWORD="relay-password-for-tests",
        NEWSLETTER_DKIM__PRIVATE_KEY_FILE=str(dkim_key),
        COLUMNS="200",
        **extra,
    )


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile= reads them (no quotes used in ours)."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values
