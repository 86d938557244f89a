"""`spec.identity` of an environment: clear errors naming the file or field, public keys only,
and development tokens minted only where they belong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from controlplane.errors import ConfigError
from controlplane.identity.devkeys import create_dev_key, mint_token
from controlplane.spec.load import load_environment

from .keys import Issuer


def write_env(repo: Path, tier: str = "development", **identity: object) -> None:
    (repo / "environments").mkdir(parents=True, exist_ok=True)
    env = {
        "apiVersion": "cpl.dev/v1",
        "kind": "Environment",
        "metadata": {"name": "e"},
        "spec": {
            "tier": tier,
            "targets": [{"name": "t", "engine": "argo", "namespace": "n", "path": "out"}],
            "identity": {"issuer": "https://cpl.local/dev", "audience": "cpl", **identity},
        },
    }
    (repo / "environments" / "e.yaml").write_text(yaml.safe_dump(env))


def problem(repo: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_environment(repo, "e")
    error = caught.value
    return " ".join([error.message, *(d.message for d in error.diagnostics)])


def test_missing_or_private_keys_are_named(tmp_path: Path) -> None:
    write_env(tmp_path, jwks="identity/jwks.json")
    assert "identity/jwks.json: cannot read the JWKS" in problem(tmp_path)
    private = Issuer("k").key.as_dict(private=True)
    (tmp_path / "identity").mkdir()
    (tmp_path / "identity" / "jwks.json").write_text(json.dumps({"keys": [private]}))
    assert "private members (d)" in problem(tmp_path)
    write_env(tmp_path, jwks="http://id.example.com/jwks")
    assert "neither a repo file nor https://" in problem(tmp_path)
    write_env(tmp_path)
    assert "identity needs `jwks`" in problem(tmp_path)
    write_env(tmp_path, keys=[private])
    assert "private members" in problem(tmp_path)


def test_development_tokens_verify_and_are_refused_off_development(tmp_path: Path) -> None:
    from controlplane.identity.principal import verified_principal

    create_dev_key(tmp_path)
    write_env(tmp_path, jwks="identity/jwks.json")
    environment = load_environment(tmp_path, "e")
    token = mint_token(tmp_path, environment, "alice", ["approver"], 60)
    principal = verified_principal(environment, token)
    assert (principal.sub, principal.roles, principal.verified) == ("alice", ("approver",), True)
    write_env(tmp_path, tier="production", jwks="identity/jwks.json")
    with pytest.raises(ConfigError, match="production environment"):
        mint_token(tmp_path, load_environment(tmp_path, "e"), "alice", ["approver"], 60)
