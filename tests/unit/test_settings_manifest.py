"""terraform/code_settings.json lists exactly the settings shared/config.py reads (the Terraform tests check the
deployment against it)."""

import json

from infra import settings_manifest
from shared.config import fields


def test_manifest_lists_every_setting_the_code_reads():
    listed = json.loads(settings_manifest.MANIFEST.read_text())["settings"]
    assert listed == sorted(f.metadata["env"] for f in fields()), "run: python -m infra.settings_manifest"


def test_check_fails_when_the_manifest_is_stale(tmp_path, monkeypatch):
    stale = tmp_path / "code_settings.json"
    stale.write_text(json.dumps({"settings": ["GOOGLE_CLOUD_PROJECT"]}))
    monkeypatch.setattr(settings_manifest, "MANIFEST", stale)
    assert settings_manifest.main(["--check"]) == 1
    settings_manifest.main([])
    assert settings_manifest.main(["--check"]) == 0
