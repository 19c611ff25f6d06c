import flask

from shared.db import _direct_connect_args
from shared.errors import BadRequest, DatabaseUnavailable, DimensionMismatch
from shared.web import error_response


def test_client_errors_show_their_message_server_errors_do_not():
    app = flask.Flask(__name__)
    with app.app_context():
        bad = error_response(BadRequest("'version_id' (string) is required"))
        assert bad.status_code == 400
        assert bad.get_json() == {"error": {"code": "bad_request", "message": "'version_id' (string) is required"}}

        down = error_response(DatabaseUnavailable("cannot connect to 10.0.0.3:5432: password authentication failed"))
        assert down.status_code == 503 and down.headers["Retry-After"]
        assert "10.0.0.3" not in down.get_data(as_text=True)

        config = error_response(DimensionMismatch("index holds 384"))
        assert config.status_code == 500 and "384" not in config.get_data(as_text=True)


def test_database_url_tcp_and_unix_socket():
    assert _direct_connect_args("postgresql://app:s%40cret@db.internal:6543/kb") == {
        "user": "app", "password": "s@cret", "host": "db.internal", "port": 6543, "database": "kb", "timeout": 10}
    sock = _direct_connect_args("postgresql://postgres@/knowledge?host=/tmp/pg")
    assert sock["unix_sock"] == "/tmp/pg/.s.PGSQL.5432" and sock["database"] == "knowledge" and "host" not in sock
