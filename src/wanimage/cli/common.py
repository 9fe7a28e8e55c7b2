"""What every subcommand shares: Settings from the command line over the environment."""

from __future__ import annotations

import argparse
import ipaddress

from ..config import Settings

# command-line option (argparse dest) -> Settings field; None means "not given, keep the env"
_OVERRIDES = {
    "host": "host",
    "port": "port",
    "data_dir": "data_dir",
    "workers": "workers",
    "api_keys": "api_keys",
    "api_keys_file": "api_keys_file",
    "database_url": "database_url",
    "insecure": "allow_insecure_bind",
}


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {}
    for dest, field in _OVERRIDES.items():
        value = getattr(args, dest, None)
        if value is not None and value is not False:
            overrides[field] = value
    return Settings(**overrides)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
