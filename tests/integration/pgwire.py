# A minimal PostgreSQL frontend for start-up only: it logs in (trust, cleartext, md5 or
# SCRAM-SHA-256) and returns the server's ErrorResponse fields, which libpq does not expose.
import base64
import hashlib
import hmac
import os
import socket
import struct
from dataclasses import dataclass, field

PROTOCOL_3_0 = 196608
CANCEL_REQUEST_CODE = 80877102

AUTH_OK = 0
AUTH_CLEARTEXT = 3
AUTH_MD5 = 5
AUTH_SASL = 10
AUTH_SASL_CONTINUE = 11
AUTH_SASL_FINAL = 12


class ProtocolError(Exception):
    pass


@dataclass
class StartupOutcome:
    """What a login attempt ended with: ReadyForQuery, an ErrorResponse, or a closed socket."""

    ready: bool = False
    error: dict = field(default_factory=dict)  # ErrorResponse field code -> value, e.g. 'C', 'M'
    auth_requests: list = field(default_factory=list)  # Authentication* codes, in order
    closed_without_error: bool = False

    @property
    def sqlstate(self):
        return self.error.get("C")

    @property
    def message(self):
        return self.error.get("M")


def _recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def _read_message(sock):
    header = _recv_exact(sock, 5)
    kind = header[:1]
    (length,) = struct.unpack("!I", header[1:])
    if length < 4 or length > 1 << 20:
        raise ProtocolError(f"implausible length {length} for message {kind!r}")
    return kind, _recv_exact(sock, length - 4)


def _message(kind, payload):
    return kind + struct.pack("!I", len(payload) + 4) + payload


def _parse_error_fields(payload):
    fields = {}
    for part in payload.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return fields


def _md5_response(user, password, salt):
    inner = hashlib.md5(password.encode() + user.encode()).hexdigest()
    return "md5" + hashlib.md5(inner.encode() + salt).hexdigest()


class _ScramClient:
    """SCRAM-SHA-256 without channel binding, as libpq does it without TLS."""

    def __init__(self, password):
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n=,r={self.nonce}"

    def first_message(self):
        return ("n,," + self.first_bare).encode()

    def final_message(self, server_first):
        attrs = dict(item.split("=", 1) for item in server_first.split(","))
        if not attrs["r"].startswith(self.nonce):
            raise ProtocolError("server nonce does not extend the client nonce")
        salt = base64.b64decode(attrs["s"])
        iterations = int(attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha256", self.password, salt, iterations)
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        auth_message = f"{self.first_bare},{server_first},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()


def attempt_login(host, port, user, database, password, timeout=10.0, extra_params=()):
    """Runs the start-up phase against host:port and reports how it ended."""
    outcome = StartupOutcome()
    params = b"".join(k.encode() + b"\0" + v.encode() + b"\0"
                      for k, v in (("user", user), ("database", database), *extra_params))
    startup = struct.pack("!I", PROTOCOL_3_0) + params + b"\0"
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack("!I", len(startup) + 4) + startup)
        scram = None
        while True:
            try:
                kind, payload = _read_message(sock)
            except (EOFError, ConnectionResetError):
                outcome.closed_without_error = True
                return outcome
            if kind == b"E":
                outcome.error = _parse_error_fields(payload)
                return outcome
            if kind == b"Z":
                outcome.ready = True
                sock.sendall(_message(b"X", b""))
                return outcome
            if kind != b"R":
                continue  # ParameterStatus, BackendKeyData, NoticeResponse
            (code,) = struct.unpack("!I", payload[:4])
            outcome.auth_requests.append(code)
            if code == AUTH_OK or code == AUTH_SASL_FINAL:
                continue
            if code == AUTH_CLEARTEXT:
                sock.sendall(_message(b"p", password.encode() + b"\0"))
            elif code == AUTH_MD5:
                response = _md5_response(user, password, payload[4:8])
                sock.sendall(_message(b"p", response.encode() + b"\0"))
            elif code == AUTH_SASL:
                mechanisms = payload[4:].split(b"\0")
                if b"SCRAM-SHA-256" not in mechanisms:
                    raise ProtocolError(f"no SCRAM-SHA-256 among {mechanisms!r}")
                scram = _ScramClient(password)
                first = scram.first_message()
                body = b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first
                sock.sendall(_message(b"p", body))
            elif code == AUTH_SASL_CONTINUE:
                if scram is None:
                    raise ProtocolError("SASLContinue before SASL")
                sock.sendall(_message(b"p", scram.final_message(payload[4:].decode())))
            else:
                raise ProtocolError(f"unsupported authentication request {code}")


@dataclass
class QueryResult:
    """What a simple Query got back: rows as text (None for NULL), the first ErrorResponse, and
    the ReadyForQuery status, or closed=True when the connection ended before ReadyForQuery."""

    rows: list = field(default_factory=list)
    error: dict = None
    status: bytes = None
    closed: bool = False
    messages: list = field(default_factory=list)


def parse_data_row(payload):
    (count,) = struct.unpack("!H", payload[:2])
    values, pos = [], 2
    for _ in range(count):
        (length,) = struct.unpack("!i", payload[pos:pos + 4])
        pos += 4
        if length < 0:
            values.append(None)
        else:
            values.append(payload[pos:pos + length].decode("utf-8", "replace"))
            pos += length
    return tuple(values)


def send_cancel_request(host, port, pid, key, timeout=10.0):
    """Sends a CancelRequest on a new connection and waits for the pooler to close it."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack("!IIII", 16, CANCEL_REQUEST_CODE, pid, key))
        try:
            while sock.recv(256):
                pass
        except (ConnectionResetError, socket.timeout):
            pass


def attempt_query(host, port, user, database, sql, extra_params=(), timeout=10.0):
    """Logs in (auth_type trust or any) and runs one simple Query, stopping at the first error
    of either step. The QueryResult's messages include the start-up's."""
    result = QueryResult()
    params = b"".join(k.encode() + b"\0" + v.encode() + b"\0"
                      for k, v in (("user", user), ("database", database), *extra_params))
    startup = struct.pack("!I", PROTOCOL_3_0) + params + b"\0"
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack("!I", len(startup) + 4) + startup)
        for phase in ("startup", "query"):
            if phase == "query":
                sock.sendall(_message(b"Q", sql.encode() + b"\0"))
            while True:
                try:
                    kind, payload = _read_message(sock)
                except (EOFError, ConnectionResetError):
                    result.closed = True
                    return result
                result.messages.append((kind, payload))
                if kind == b"E" and result.error is None:
                    result.error = _parse_error_fields(payload)
                elif kind == b"D":
                    result.rows.append(parse_data_row(payload))
                elif kind == b"R" and struct.unpack("!I", payload[:4])[0] != AUTH_OK:
                    raise ProtocolError("attempt_query needs auth_type trust or any")
                elif kind == b"Z":
                    result.status = payload
                    break
            if result.error is not None:
                return result
        sock.sendall(_message(b"X", b""))
    return result


class RawSession:
    """A logged-in connection (auth_type trust or any) that sends and reads raw messages."""

    def __init__(self, host, port, user, database, extra_params=(), timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        params = b"".join(k.encode() + b"\0" + v.encode() + b"\0"
                          for k, v in (("user", user), ("database", database), *extra_params))
        startup = struct.pack("!I", PROTOCOL_3_0) + params + b"\0"
        self.sock.sendall(struct.pack("!I", len(startup) + 4) + startup)
        self.welcome = self.read_until_ready()

    def send(self, kind, payload=b""):
        self.sock.sendall(_message(kind, payload))

    def query(self, sql):
        self.send(b"Q", sql.encode() + b"\0")

    def read(self):
        return _read_message(self.sock)

    def read_until_ready(self):
        """Messages up to and including ReadyForQuery, as (kind, payload) pairs."""
        out = []
        while True:
            kind, payload = self.read()
            if kind == b"R" and struct.unpack("!I", payload[:4])[0] != AUTH_OK:
                raise ProtocolError("RawSession needs auth_type trust or any")
            out.append((kind, payload))
            if kind == b"Z":
                return out

    def read_until_ready_or_closed(self):
        """Like read_until_ready, but a connection closed by the peer ends the list: returns
        (messages, closed)."""
        out = []
        while True:
            try:
                kind, payload = self.read()
            except (EOFError, ConnectionResetError):
                return out, True
            out.append((kind, payload))
            if kind == b"Z":
                return out, False

    def run(self, sql):
        """Sends one simple Query and collects its outcome (see QueryResult)."""
        self.query(sql)
        messages, closed = self.read_until_ready_or_closed()
        result = QueryResult(messages=messages, closed=closed, error=self.error_of(messages))
        for kind, payload in messages:
            if kind == b"D":
                result.rows.append(parse_data_row(payload))
            elif kind == b"Z":
                result.status = payload
        return result

    @property
    def backend_key(self):
        """(process ID, secret key) from the BackendKeyData of the welcome."""
        for kind, payload in self.welcome:
            if kind == b"K":
                return struct.unpack("!II", payload[:8])
        return None

    def parameter_status(self, name):
        """The value the welcome's last ParameterStatus gave for `name`, or None."""
        value = None
        for kind, payload in self.welcome:
            if kind == b"S":
                key, val = payload.split(b"\0")[:2]
                if key.decode() == name:
                    value = val.decode()
        return value

    @staticmethod
    def error_of(messages):
        for kind, payload in messages:
            if kind == b"E":
                return _parse_error_fields(payload)
        return None

    def close(self):
        try:
            self.send(b"X")
        except OSError:
            pass
        self.sock.close()
