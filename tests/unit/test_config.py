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


def test_public_url_bases_are_read_as_prefix_and_base_pairs():
    s = Settings.from_env({"DATABASE_URL": "postgresql://x@h/db", "PUBLIC_URL_BASES":
                           " gs://knowledge/=https://help.example.com/kb , gs://knowledge/faq.csv=http://h.example/faq,"})
    assert s.validate().url_bases == (("gs://knowledge/", "https://help.example.com/kb/"),
                                      ("gs://knowledge/faq.csv", "http://h.example/faq"))
    assert Settings().url_bases == ()


@pytest.mark.parametrize("value", [
    "knowledge/billing/=https://help.example.com/",  # not a gs:// path
    "gs://knowledge=https://help.example.com/",  # no object path after the bucket
    "gs://knowledge/billing/",  # no base
    "gs://knowledge/billing/=ftp://help.example.com/",  # not http(s)
    "gs://knowledge/billing/=javascript:alert(1)",
    "gs://knowledge/billing/=/billing/",  # relative
    "gs://knowledge/billing/=https://help.example.com/?page=",  # a query: the path would land in it
    "gs://knowledge/billing/=https://help.example.com/#",
    "gs://knowledge/billing/=https://help example.com/",
    "gs://knowledge/a/=https://a.example/,gs://knowledge/a/=https://b.example/",  # the same prefix twice
])
def test_a_bad_public_url_base_stops_the_function_naming_the_setting(value):
    with pytest.raises(ConfigurationError, match="PUBLIC_URL_BASES"):
        Settings.from_env({"DATABASE_URL": "postgresql://x@h/db", "PUBLIC_URL_BASES": value}).validate()
