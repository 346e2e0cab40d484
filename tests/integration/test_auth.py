# Client authentication at pgmux: md5 and SCRAM users with plain or hashed secrets in the auth file,
# under each auth_type, then on to PostgreSQL; failed logins look the same whether the user exists.
import pytest

from conftest import ROLES
from pgwire import (AUTH_CLEARTEXT, AUTH_MD5, AUTH_OK, AUTH_SASL, AUTH_SASL_CONTINUE,
                    AUTH_SASL_FINAL, attempt_login)

MD5_EXCHANGE = [AUTH_MD5, AUTH_OK]
SCRAM_EXCHANGE = [AUTH_SASL, AUTH_SASL_CONTINUE, AUTH_SASL_FINAL, AUTH_OK]

# (auth_type, user, secret kind in the auth file, the exchange the client must be asked for)
LOGIN_CASES = [
    ("md5", "md5user", "plain", MD5_EXCHANGE),
    ("md5", "md5user", "hashed", MD5_EXCHANGE),
    ("md5", "scramuser", "plain", MD5_EXCHANGE),
    # A SCRAM secret cannot answer an md5 challenge: auth_type md5 falls back to SCRAM for it.
    ("md5", "scramuser", "hashed", SCRAM_EXCHANGE),
    ("scram-sha-256", "md5user", "plain", SCRAM_EXCHANGE),
    ("scram-sha-256", "scramuser", "plain", SCRAM_EXCHANGE),
    ("scram-sha-256", "scramuser", "hashed", SCRAM_EXCHANGE),
    ("plain", "md5user", "plain", [AUTH_CLEARTEXT, AUTH_OK]),
    ("trust", "scramuser", "plain", [AUTH_OK]),
]


def _secret(pg, user, kind):
    return ROLES[user][1] if kind == "plain" else pg.secrets[user]


@pytest.mark.parametrize("auth_type,user,kind,exchange", LOGIN_CASES,
                         ids=[f"{a}-{u}-{k}" for a, u, k, _ in LOGIN_CASES])
def test_login_through_pgmux_reaches_postgresql(pgmux, pg, auth_type, user, kind, exchange):
    mux = pgmux(auth_type=auth_type, users={user: _secret(pg, user, kind)})
    outcome = attempt_login(mux.host, mux.port, user, "testdb", ROLES[user][1])
    assert outcome.error == {}
    assert outcome.ready
    assert outcome.auth_requests == exchange
    # A query needs a server connection, which pgmux logs into with the same secret.
    out = mux.psql("-c", "SELECT current_user, current_database()", user=user).stdout
    assert out == f"{user}|testdb\n"


def _normalised(fields, user):
    return {code: value.replace(f'"{user}"', '"<user>"') for code, value in fields.items()}


@pytest.mark.parametrize("auth_type", ["md5", "scram-sha-256"])
def test_wrong_password_and_unknown_user_get_the_same_error(pgmux, auth_type):
    mux = pgmux(auth_type=auth_type)
    wrong = attempt_login(mux.host, mux.port, "md5user", "testdb", "not-the-password")
    unknown = attempt_login(mux.host, mux.port, "nosuchuser", "testdb", "not-the-password")
    for outcome in (wrong, unknown):
        assert not outcome.ready
        assert outcome.sqlstate == "28P01"
    assert wrong.message.startswith("password authentication failed for user")
    assert '"md5user"' in wrong.message
    assert _normalised(wrong.error, "md5user") == _normalised(unknown.error, "nosuchuser")
    # The unknown user is challenged like a real one, so the exchange does not tell them apart.
    assert wrong.auth_requests == unknown.auth_requests
    assert wrong.auth_requests[0] == (AUTH_MD5 if auth_type == "md5" else AUTH_SASL)

    seen_by_psql = []
    for user in ("md5user", "nosuchuser"):
        result = mux.psql("-c", "SELECT 1", user=user, password="not-the-password", check=False)
        assert result.returncode != 0
        seen_by_psql.append(result.stderr.replace(f'"{user}"', '"<user>"'))
    assert "password authentication failed" in seen_by_psql[0]
    assert seen_by_psql[0] == seen_by_psql[1]


def test_unknown_database_is_refused_with_3D000(pgmux):
    mux = pgmux(auth_type="md5")
    outcome = attempt_login(mux.host, mux.port, "md5user", "nosuchdb", ROLES["md5user"][1])
    assert not outcome.ready
    assert outcome.sqlstate == "3D000"
    assert outcome.message == "no such database: nosuchdb"
    result = mux.psql("-c", "SELECT 1", dbname="nosuchdb", check=False)
    assert result.returncode != 0
    assert "no such database: nosuchdb" in result.stderr
