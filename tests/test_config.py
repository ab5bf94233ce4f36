from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from newsletter.config import ConfigError, load_settings, mask_secrets


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "newsletter.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None)
    assert settings.source is None
    assert settings.site.name == "London Daily"
    assert settings.database.url == "sqlite:///var/newsletter.db"
    assert settings.smtp.port == 1025
    assert [n.id for n in settings.newsletters] == ["daily"]


def test_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[smtp]\nport = 2500\nhost = "mail.example"\n')
    monkeypatch.setenv("NEWSLETTER_SMTP__PORT", "2525")
    settings = load_settings(path)
    assert settings.smtp.port == 2525
    assert settings.smtp.host == "mail.example"
    assert settings.source == path


def test_config_file_from_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[site]\nname = "Other Daily"\n')
    monkeypatch.setenv("NEWSLETTER_CONFIG", str(path))
    assert load_settings(None).site.name == "Other Daily"


def test_newsletter_toml_in_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "[server]\nport = 9000\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings(None).server.port == 9000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[smtp]\nprot = 1\n", "smtp.prot"),
        ("[bogus]\nx = 1\n", "bogus"),
        ('[smtp]\nport = "abc"\n', "smtp.port"),
        ('[smtp]\nsecurity = "ssl3"\n', "smtp.security"),
        (
            '[[newsletters]]\nid = "d"\nname = "D"\nschedule = "61 7 * * *"\n',
            "newsletters[0].schedule",
        ),
        (
            '[[newsletters]]\nid = "d"\nname = "D"\ntimezone = "Mars/Base"\n',
            "newsletters[0].timezone",
        ),
        ('[site]\nbase_url = "not a url"\n', "site.base_url"),
        ('[[feeds]]\nurl = "ftp://x.example/feed"\n', "feeds[0].url"),
        ('[smtp]\nfrom_address = "not-an-address"\n', "smtp.from_address"),
        ('[site]\nbase_url = "https://news.example.com"\n', "security.secret_key"),
        ('[database]\nurl = "mysql://x/y"\n', "database.url"),
        ("[smtp\n", "not valid TOML"),
    ],
)
def test_bad_values_name_the_key_and_file(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


def test_bad_environment_value_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_SMTP__CONCURRENCY", "many")
    with pytest.raises(ConfigError, match="NEWSLETTER_SMTP__CONCURRENCY"):
        load_settings(write(tmp_path, ""))


def test_unknown_environment_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_SMPT__PORT", "25")
    with pytest.raises(ConfigError, match="NEWSLETTER_SMPT__PORT"):
        load_settings(write(tmp_path, ""))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml")


def test_secrets_are_masked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[smtp]\npassword = "hunter2"\n[security]\nsecret_key = "s3cret-s3cret-s3cret"\n'
        'admin_token = "t0ken-t0ken-t0ken"\n[database]\nurl = "postgresql+psycopg://u:pw@db/x"\n',
    )
    dumped = str(mask_secrets(load_settings(path)))
    for secret in ("hunter2", "s3cret-s3cret-s3cret", "t0ken-t0ken-t0ken", ":pw@"):
        assert secret not in dumped


def test_example_config_is_valid_and_documents_every_key() -> None:
    example = Path(__file__).parents[1] / "config.example.toml"
    settings = load_settings(example)
    text = example.read_text()
    tables = [(section, model) for section, model in settings if not isinstance(model, list)]
    while tables:
        section, model = tables.pop()
        for key, info in type(model).model_fields.items():
            name = info.alias or key
            value = getattr(model, key)
            if isinstance(value, BaseModel):  # a table of its own: [bounces.mailbox]
                assert f"[{section}.{name}]" in text, f"[{section}.{name}] undocumented"
                tables.append((f"{section}.{name}", value))
                continue
            assert f"{name} =" in text or f"# {name} =" in text, f"{section}.{name} undocumented"


PUBLIC = '[site]\nbase_url = "https://news.example.com"\n'
KEY = 'secret_key = "k3y-0f-the-l1nks-9f8e7d"\n'
GOOD_SECRETS = f'[security]\n{KEY}admin_token = "adm1n-t0ken-5a4b3c2d1e"\n'


@pytest.mark.parametrize(
    ("text", "key", "says"),
    [
        # Exposed by the listener, though the links are local: the secrets must be real.
        ('[server]\nhost = "0.0.0.0"\n', "security.secret_key", "listening on 0.0.0.0"),
        (f'[server]\nhost = "::"\n[security]\n{KEY}', "security.admin_token", "default"),
        (PUBLIC + GOOD_SECRETS.replace(KEY, 'secret_key = "aaaaaaaaaaaaaaaaaaaa"\n'), "security.secret_key",
         "guess"),
        (PUBLIC + f'[security]\n{KEY}{KEY.replace("secret_key", "admin_token")}', "security.admin_token",
         "differ"),
        (PUBLIC + GOOD_SECRETS.replace("[security]\n", '[security]\nmetrics_token = "short"\n'),
         "security.metrics_token", "16 characters"),
        ('[site]\nbase_url = "http://news.example.com"\n' + GOOD_SECRETS, "site.base_url", "https"),
        ('[site]\nbase_url = "https://news.example.com/?x=1"\n' + GOOD_SECRETS, "site.base_url", "query"),
        ('[site]\nbase_url = "https://news.example.com/#top"\n' + GOOD_SECRETS, "site.base_url", "fragment"),
        ('[site]\nbase_url = "https://u:pw@news.example.com"\n' + GOOD_SECRETS, "site.base_url", "password"),
        ('[smtp]\nhost = "mail.example.com"\nusername = "u"\npassword = "p"\n', "smtp.security", "clear"),
        ("[security]\nconfirm_max_age_days = 30\n", "security.confirm_max_age_days", "pending_expiry_days"),
        ("[articles]\nretention_days = 1\n[[newsletters]]\nid = \"w\"\nname = \"W\"\nlookback_hours = 168\n",
         "articles.retention_days", "lookback_hours"),
        ('[[feeds]]\nurl = "http://0177.0.0.1/feed"\n', "feeds[0].url", "usable"),
    ],
)  # fmt: skip
def test_dangerous_settings_are_refused_naming_the_key(
    tmp_path: Path, text: str, key: str, says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    message = str(caught.value)
    assert message.startswith(f"config error: {key} ("), message
    assert says in message and "\n" not in message


@pytest.mark.parametrize(
    "text",
    [
        "",  # built-in defaults on loopback: a developer's machine
        '[server]\nhost = "127.0.0.2"\n',
        PUBLIC + GOOD_SECRETS,
        '[smtp]\nhost = "127.0.0.1"\nusername = "u"\npassword = "p"\n',  # a local relay
        '[smtp]\nhost = "mail.example.com"\nsecurity = "starttls"\nusername = "u"\npassword = "p"\n',
        "[articles]\nretention_days = 0\n",
    ],
)
def test_safe_settings_are_accepted(tmp_path: Path, text: str) -> None:
    load_settings(write(tmp_path, text))


def test_legitimate_but_dangerous_settings_are_warned_about(tmp_path: Path) -> None:
    from newsletter.config import warnings

    quiet = load_settings(write(tmp_path, PUBLIC + GOOD_SECRETS))
    assert warnings(quiet) == []
    risky = load_settings(
        write(
            tmp_path,
            PUBLIC + GOOD_SECRETS + '[server]\nforwarded_allow_ips = "*"\nmetrics = "public"\n'
            '[[feeds]]\nurl = "http://cms.internal/feed"\nallow_private = true\n',
        )
    )
    found = warnings(risky)
    assert [w.split(":", 1)[0] for w in found] == [
        "server.forwarded_allow_ips",
        "server.metrics",
        "feeds[].allow_private",
    ]


def test_several_relays_and_who_uses_them(tmp_path: Path) -> None:
    text = (
        '[[smtp.relays]]\nname = "primary"\nhost = "127.0.0.1"\nport = 2525\nsecurity = "none"\n'
        'weight = 3\n[[smtp.relays]]\nname = "backup"\nhost = "127.0.0.1"\nport = 2526\nsecurity = "none"\n'
        "concurrency = 2\n"
        '[[newsletters]]\nid = "daily"\nname = "D"\nrelays = ["primary"]\n'
    )
    settings = load_settings(write(tmp_path, text))
    relays = settings.smtp.relay_settings()
    assert [(r.name, r.key, r.config.port, r.config.concurrency, r.weight) for r in relays] == [
        ("primary", "smtp.relays[0]", 2525, 8, 3.0),
        ("backup", "smtp.relays[1]", 2526, 2, 1.0),
    ]
    assert all(r.config.from_address == settings.smtp.from_address for r in relays)
    single = load_settings(write(tmp_path, "[smtp]\nport = 2600\n")).smtp.relay_settings()
    assert [(r.name, r.key, r.config.port) for r in single] == [("default", "smtp", 2600)]


def test_a_relay_takes_from_smtp_what_it_leaves_out(tmp_path: Path) -> None:
    text = (
        '[smtp]\nport = 2525\nsecurity = "starttls"\nusername = "news"\npassword = "shared-secret"\n'
        "concurrency = 3\nrate_limit = 50\n"
        '[[smtp.relays]]\nname = "own"\nhost = "relay.example"\nport = 465\nsecurity = "tls"\n'
        'username = "other"\npassword = "its-own"\nconcurrency = 1\nrate_limit = 5\n'
        '[[smtp.relays]]\nname = "inherits"\nhost = "relay2.example"\n'
    )
    own, inherits = load_settings(write(tmp_path, text)).smtp.relay_settings()
    assert (own.config.port, own.config.security, own.config.username) == (465, "tls", "other")
    assert (own.config.password.get_secret_value(), own.config.concurrency, own.config.rate_limit) == (
        "its-own",
        1,
        5,
    )
    assert (inherits.config.host, inherits.config.port, inherits.config.security) == (
        "relay2.example",
        2525,
        "starttls",
    )
    assert (inherits.config.username, inherits.config.password.get_secret_value()) == (
        "news",
        "shared-secret",
    )
    assert (inherits.config.concurrency, inherits.config.rate_limit) == (3, 50)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[[smtp.relays]]\nname = "a"\nhost = "h"\n[[smtp.relays]]\nname = "a"\nhost = "i"\n', "smtp.relays"),
        ('[smtp]\nconfirmation_relays = ["nope"]\n', "smtp.confirmation_relays"),
        ('[[newsletters]]\nid = "d"\nname = "D"\nrelays = ["nope"]\n', "newsletters[0].relays"),
        ('[[smtp.relays]]\nname = "a"\nhost = "mail.example.com"\nsecurity = "none"\nusername = "u"\n',
         "smtp.relays[0].security"),
    ],
)  # fmt: skip
def test_bad_relay_settings_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    assert str(caught.value).startswith(f"config error: {key} ("), str(caught.value)
