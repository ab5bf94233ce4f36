"""Reading the configuration: a TOML file plus NEWSLETTER_<SECTION>__<KEY> overrides, once."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from newsletter.config.settings import ENV_PREFIX, Settings
from newsletter.errors import ConfigError

DEFAULT_CONFIG_FILE = Path("newsletter.toml")


def find_config_file(explicit: Path | None) -> Path | None:
    """--config, else $NEWSLETTER_CONFIG, else ./newsletter.toml if present, else None."""
    if explicit is not None:
        return explicit
    if os.environ.get("NEWSLETTER_CONFIG"):
        return Path(os.environ["NEWSLETTER_CONFIG"])
    if DEFAULT_CONFIG_FILE.is_file():
        return DEFAULT_CONFIG_FILE
    return None


def load_settings(
    path: Path | None = None,
    *,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Read, merge and validate the configuration once; raise ConfigError on any problem.

    `overrides` (nested like the file) beat the file; the environment beats both.
    """
    env = dict(os.environ)
    source = find_config_file(path)
    data = read_toml(source) if source is not None else {}
    if overrides:
        data = merge_tables(data, overrides)
    _reject_unknown_env_sections(env)
    where = str(source) if source is not None else "built-in defaults"
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, where, env)) from None
    settings._source = source
    return settings


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"config file unreadable: {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def merge_tables(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_tables(merged[key], value)
        else:
            merged[key] = value
    return merged


def _reject_unknown_env_sections(env: dict[str, str]) -> None:
    sections = set(Settings.model_fields)
    for name in env:
        if name.startswith(ENV_PREFIX) and "__" in name[len(ENV_PREFIX) :]:
            section = name[len(ENV_PREFIX) :].split("__", 1)[0].lower()
            if section not in sections:
                raise ConfigError(f"config error: {name}: unknown section {section!r}")


def _describe(exc: ValidationError, where: str, env: dict[str, str]) -> str:
    error = exc.errors()[0]
    location = [str(part) for part in error["loc"]]
    message = str(error["msg"]).removeprefix("Value error, ")
    # Validators spanning several keys name the key at the start of their message.
    named = re.match(r"^([a-z_]+(?:\.[a-z0-9_]+|\[\d+\])*): (.*)$", message, re.DOTALL)
    if named and error["type"] == "value_error":
        location += re.sub(r"\[(\d+)\]", r".\1", named.group(1)).split(".")
        message = named.group(2)
    key = re.sub(r"\.(\d+)", r"[\1]", ".".join(location)) or "(top level)"
    env_name = ENV_PREFIX + "__".join(part.upper() for part in location[:2])
    origin = f"environment {env_name}" if env_name in env else where
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "required key is missing"
    return f"config error: {key} ({origin}): {message.splitlines()[0]}"


def mask_secrets(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data with every secret replaced by ****."""
    data = settings.model_dump(mode="json", by_alias=True)
    for section, key in (
        ("smtp", "password"),
        ("security", "secret_key"),
        ("security", "admin_token"),
        ("security", "metrics_token"),
    ):
        if data[section][key]:
            data[section][key] = "****"
    data["database"]["url"] = _mask_url_password(data["database"]["url"])
    return data


def _mask_url_password(url: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1****@", url)
