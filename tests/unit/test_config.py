import pathlib

import pytest

from shared.config import Settings, fields
from shared.errors import ConfigurationError

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented_in_the_readme():
    text = README.read_text()
    missing = [f.metadata["env"] for f in fields() if f"`{f.metadata['env']}`" not in text]
    assert not missing, f"add these settings to the README's configuration table: {missing}"


def test_every_setting_has_help():
    assert all(f.metadata.get("help") for f in fields())


def test_reads_and_coerces_the_environment():
    s = Settings.from_env({"DATABASE_URL": "postgresql://x@h/db", "CHUNK_MAX_TOKENS": "300",
                           "GEMINI_VERTEXAI": "yes", "EMBED_RETRY_BASE_SECONDS": "0.5"})
    assert (s.chunk_max_tokens, s.gemini_vertexai, s.embed_retry_base_seconds) == (300, True, 0.5)


def test_bad_number_names_the_variable():
    with pytest.raises(ConfigurationError, match="CHUNK_MAX_TOKENS"):
        Settings.from_env({"CHUNK_MAX_TOKENS": "many"})


@pytest.mark.parametrize(
    "env, message",
    [
        ({}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://x@h/db", "VECTOR_BACKEND": "pinecone"}, "PINECONE_INDEX_HOST"),
        ({"DATABASE_URL": "postgresql://x@h/db", "EMBEDDER": "gemini"}, "GEMINI_API_KEY"),
        ({"CLOUD_SQL_INSTANCE": "p:r:i"}, "DB_USER"),
        ({"DATABASE_URL": "postgresql://x@h/db", "CHUNK_OVERLAP_TOKENS": "200"}, "CHUNK_OVERLAP_TOKENS"),
    ],
)
def test_missing_or_inconsistent_settings_say_what_to_set(env, message):
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(env).validate()
