"""A small D-Bus client for the systemd cgroup driver: one AF_UNIX connection, method calls and signals.

Only what talking to systemd needs: SASL `AUTH EXTERNAL`, the wire format (marshalling with its
alignment rules, either byte order on reading), method calls with their replies or errors, and signals.
Values map to Python as: integers and booleans, str (s, o, g), bytes (ay), list (arrays), dict (a{..}),
tuple (structs), and a variant is a (signature, value) pair both ways.

Imported only by the systemd driver (never on a hot path of the cgroupfs driver).
"""

from __future__ import annotations

import os
import socket
import struct
import time

from pyrunc.errors import CgroupError

SYSTEM_BUS = "unix:path=/run/dbus/system_bus_socket"
SYSTEMD_PRIVATE = "unix:path=/run/systemd/private"
BUS_NAME = "org.freedesktop.DBus"
BUS_PATH = "/org/freedesktop/DBus"

METHOD_CALL, METHOD_RETURN, ERROR, SIGNAL = 1, 2, 3, 4
# Header field codes and the type of their values.
PATH, INTERFACE, MEMBER, ERROR_NAME, REPLY_SERIAL, DESTINATION, SENDER, SIGNATURE = range(1, 9)
FIELD_TYPES = {PATH: "o", INTERFACE: "s", MEMBER: "s", ERROR_NAME: "s", REPLY_SERIAL: "u", DESTINATION: "s",
               SENDER: "s", SIGNATURE: "g"}

FIXED = {"y": "B", "b": "I", "n": "h", "q": "H", "i": "i", "u": "I", "x": "q", "t": "Q", "d": "d"}
ALIGNMENT = {"y": 1, "g": 1, "v": 1, "n": 2, "q": 2, "b": 4, "i": 4, "u": 4, "s": 4, "o": 4, "a": 4,
             "x": 8, "t": 8, "d": 8, "(": 8, "{": 8}
MAX_MESSAGE = 128 << 20


class DBusError(CgroupError):
    """An error reply (or a failure to talk at all); `name` is the D-Bus error name."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}" if message else name)
        self.name, self.message = name, message


# -- signatures -----------------------------------------------------------------------------------------
def _type_end(signature: str, start: int) -> int:
    """The index just past the single complete type that starts at `start`."""
    if start >= len(signature):
        raise DBusError("org.freedesktop.DBus.Error.InvalidSignature", f"{signature!r} ends early")
    code = signature[start]
    if code == "a":
        return _type_end(signature, start + 1)
    if code in "({":
        close = ")" if code == "(" else "}"
        i = start + 1
        while i < len(signature) and signature[i] != close:
            i = _type_end(signature, i)
        if i >= len(signature) or i == start + 1:
            raise DBusError("org.freedesktop.DBus.Error.InvalidSignature", f"{signature!r}: unbalanced {code}")
        return i + 1
    if code in FIXED or code in "sogv":
        return start + 1
    raise DBusError("org.freedesktop.DBus.Error.InvalidSignature", f"{signature!r}: unknown type code {code!r}")


def split_signature(signature: str) -> list[str]:
    """The complete types of a signature: "sa(sv)u" → ["s", "a(sv)", "u"]."""
    types, i = [], 0
    while i < len(signature):
        end = _type_end(signature, i)
        types.append(signature[i:end])
        i = end
    return types


# -- marshalling ----------------------------------------------------------------------------------------
class _Writer:
    """Appends values to a buffer whose offset 0 is 8-aligned in the message (header or body start)."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def pad(self, alignment: int) -> None:
        self.buf += bytes(-len(self.buf) % alignment)

    def write(self, signature: str, value: object) -> None:
        code = signature[0]
        self.pad(ALIGNMENT[code])
        if code in FIXED:
            self.buf += struct.pack("<" + FIXED[code], value)
        elif code in "so":
            data = value.encode()
            self.buf += struct.pack("<I", len(data)) + data + b"\0"
        elif code == "g":
            self.buf += bytes([len(value)]) + value.encode() + b"\0"
        elif code == "v":
            inner, inner_value = value
            self.write("g", inner)
            self.write(inner, inner_value)
        elif code == "(":
            for field_type, field in zip(split_signature(signature[1:-1]), value, strict=True):
                self.write(field_type, field)
        elif code == "a":
            self._write_array(signature[1:], value)
        else:
            raise DBusError("org.freedesktop.DBus.Error.InvalidSignature", f"cannot marshal {signature!r}")

    def _write_array(self, element: str, items: object) -> None:
        length_at = len(self.buf)
        self.buf += bytes(4)
        self.pad(ALIGNMENT[element[0]])  # the padding before the first element is not part of the length
        start = len(self.buf)
        if element == "y":
            self.buf += bytes(items)
        elif element[0] == "{":
            key_type, value_type = split_signature(element[1:-1])
            for key, value in items.items() if isinstance(items, dict) else items:
                self.pad(8)
                self.write(key_type, key)
                self.write(value_type, value)
        else:
            for item in items:
                self.write(element, item)
        struct.pack_into("<I", self.buf, length_at, len(self.buf) - start)


def marshal(signature: str, values: list | tuple) -> bytes:
    """The values of a body (or any sequence of complete types), marshalled from an 8-aligned offset."""
    writer = _Writer()
    for type_, value in zip(split_signature(signature), values, strict=True):
        writer.write(type_, value)
    return bytes(writer.buf)


class _Reader:
    def __init__(self, data: bytes, order: str, pos: int = 0) -> None:
        self.data, self.order, self.pos = data, order, pos

    def align(self, alignment: int) -> None:
        self.pos += -self.pos % alignment

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise DBusError("org.freedesktop.DBus.Error.InvalidArgs", "message truncated")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def read(self, signature: str) -> object:
        code = signature[0]
        self.align(ALIGNMENT[code])
        if code in FIXED:
            fmt = self.order + FIXED[code]
            value = struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]
            return bool(value) if code == "b" else value
        if code in "so":
            (length,) = struct.unpack(self.order + "I", self.take(4))
            return self.take(length + 1)[:-1].decode()
        if code == "g":
            return self.take(self.take(1)[0] + 1)[:-1].decode()
        if code == "v":
            inner = self.read("g")
            return inner, self.read(inner)
        if code == "(":
            return tuple(self.read(t) for t in split_signature(signature[1:-1]))
        (length,) = struct.unpack(self.order + "I", self.take(4))
        element = signature[1:]
        self.align(ALIGNMENT[element[0]])
        end = self.pos + length
        if element == "y":
            return self.take(length)
        if element[0] == "{":
            key_type, value_type = split_signature(element[1:-1])
            entries = {}
            while self.pos < end:
                self.align(8)
                key = self.read(key_type)
                entries[key] = self.read(value_type)
            return entries
        items = []
        while self.pos < end:
            items.append(self.read(element))
        return items


def unmarshal(signature: str, data: bytes, order: str = "<") -> list:
    """The values of a body marshalled by `marshal` (order "<" little-endian, ">" big-endian)."""
    reader = _Reader(data, order)
    return [reader.read(t) for t in split_signature(signature)]


# -- messages -------------------------------------------------------------------------------------------
class Message:
    __slots__ = ("body", "fields", "serial", "type")

    def __init__(self, type_: int, serial: int, fields: dict[int, object], body: list) -> None:
        self.type, self.serial, self.fields, self.body = type_, serial, fields, body

    @property
    def member(self) -> str | None:
        return self.fields.get(MEMBER)

    @property
    def interface(self) -> str | None:
        return self.fields.get(INTERFACE)

    @property
    def path(self) -> str | None:
        return self.fields.get(PATH)


def encode_message(type_: int, serial: int, fields: dict[int, object], signature: str = "",
                   body: list | tuple = ()) -> bytes:
    payload = marshal(signature, body)
    if signature:
        fields = {**fields, SIGNATURE: signature}
    header = [ord("l"), type_, 0, 1, len(payload), serial,
              [(code, (FIELD_TYPES[code], value)) for code, value in fields.items()]]
    head = marshal("yyyyuua(yv)", header)
    return head + bytes(-len(head) % 8) + payload


def header_size(prefix: bytes) -> tuple[int, str]:
    """From a message's first 16 bytes: its total size and byte order."""
    order = {ord("l"): "<", ord("B"): ">"}.get(prefix[0])
    if order is None:
        raise DBusError("org.freedesktop.DBus.Error.InvalidArgs", f"bad byte order mark {prefix[:1]!r}")
    body_length, _, fields_length = struct.unpack(order + "III", prefix[4:16])
    total = 16 + fields_length + (-(16 + fields_length) % 8) + body_length
    if total > MAX_MESSAGE:
        raise DBusError("org.freedesktop.DBus.Error.LimitsExceeded", f"message of {total} bytes")
    return total, order


def decode_message(data: bytes) -> Message:
    _, order = header_size(data[:16])
    reader = _Reader(data, order)
    _, type_, _, _, _, serial, fields = (reader.read(t) for t in ("y", "y", "y", "y", "u", "u", "a(yv)"))
    values = {code: value for code, (_, value) in fields}
    reader.align(8)
    signature = values.get(SIGNATURE, "")
    body = [reader.read(t) for t in split_signature(signature)]
    return Message(type_, serial, values, body)


# -- addresses ------------------------------------------------------------------------------------------
def _unescape(value: str) -> str:
    parts = value.split("%")
    return parts[0] + "".join(chr(int(p[:2], 16)) + p[2:] for p in parts[1:])


def socket_addresses(address: str) -> list[str]:
    """The AF_UNIX socket addresses of a D-Bus address list ("unix:path=...;unix:abstract=..."); an abstract
    one starts with NUL. Other transports are skipped."""
    found = []
    for entry in address.split(";"):
        transport, _, params = entry.partition(":")
        if transport != "unix":
            continue
        options = dict(p.split("=", 1) for p in params.split(",") if "=" in p)
        if "path" in options:
            found.append(_unescape(options["path"]))
        elif "abstract" in options:
            found.append("\0" + _unescape(options["abstract"]))
    return found


# -- the connection -------------------------------------------------------------------------------------
class Connection:
    """One authenticated connection: to a bus daemon (`bus`, after Hello) or peer to peer."""

    def __init__(self, sock: socket.socket, bus: bool) -> None:
        self.sock, self.bus = sock, bus
        self.serial = 0
        self.received = bytearray()
        self.signals: list[Message] = []
        self.unique_name = ""

    @classmethod
    def open(cls, address: str, *, bus: bool, timeout: float = 10.0) -> Connection:
        deadline = time.monotonic() + timeout
        targets = socket_addresses(address)
        if not targets:
            raise DBusError("org.freedesktop.DBus.Error.BadAddress", f"no unix socket in {address!r}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.settimeout(timeout)
            sock.connect(targets[0])
            connection = cls(sock, bus)
            connection._authenticate(deadline)
            if bus:
                connection.unique_name = connection.call(BUS_NAME, BUS_PATH, BUS_NAME, "Hello",
                                                         deadline=deadline)[0]
        except OSError as e:
            sock.close()
            raise DBusError("org.freedesktop.DBus.Error.NoServer", f"{targets[0]}: {e.strerror or e}") from None
        except BaseException:
            sock.close()
            raise
        return connection

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _authenticate(self, deadline: float) -> None:
        """SASL EXTERNAL with BEGIN sent at once, as sd-bus does: the server has read BEGIN when its OK
        arrives, so the first message reaches it on its own. (Sent after the OK, BEGIN can land in the
        same read as the first message, which systemd 252 then leaves unprocessed until more data comes.)"""
        uid = str(os.geteuid()).encode().hex()
        self.sock.sendall(b"\0AUTH EXTERNAL " + uid.encode() + b"\r\nBEGIN\r\n")
        line = self._read_line(deadline)
        if not line.startswith(b"OK "):
            raise DBusError("org.freedesktop.DBus.Error.AuthFailed", line.decode(errors="replace").strip())

    def _read_line(self, deadline: float) -> bytes:
        while b"\r\n" not in self.received:
            self._receive(deadline)
        line, _, rest = bytes(self.received).partition(b"\r\n")
        self.received = bytearray(rest)
        return line

    def _receive(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DBusError("org.freedesktop.DBus.Error.Timeout", "no answer in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            raise DBusError("org.freedesktop.DBus.Error.Timeout", "no answer in time") from None
        except OSError as e:
            raise DBusError("org.freedesktop.DBus.Error.Disconnected", e.strerror or str(e)) from None
        if not chunk:
            raise DBusError("org.freedesktop.DBus.Error.Disconnected", "the peer closed the connection")
        self.received += chunk

    def read_message(self, deadline: float) -> Message:
        while len(self.received) < 16:
            self._receive(deadline)
        total, _ = header_size(bytes(self.received[:16]))
        while len(self.received) < total:
            self._receive(deadline)
        data = bytes(self.received[:total])
        del self.received[:total]
        return decode_message(data)

    def send(self, type_: int, fields: dict[int, object], signature: str = "", body: list | tuple = ()) -> int:
        self.serial += 1
        try:
            self.sock.sendall(encode_message(type_, self.serial, fields, signature, body))
        except OSError as e:
            raise DBusError("org.freedesktop.DBus.Error.Disconnected", e.strerror or str(e)) from None
        return self.serial

    def call(self, destination: str | None, path: str, interface: str, member: str, signature: str = "",
             args: list | tuple = (), *, deadline: float | None = None) -> list:
        """Call a method and return the reply's values; an error reply raises DBusError. Signals that
        arrive meanwhile are kept for `wait_signal`."""
        fields: dict[int, object] = {PATH: path, INTERFACE: interface, MEMBER: member}
        if destination and self.bus:
            fields[DESTINATION] = destination
        serial = self.send(METHOD_CALL, fields, signature, args)
        deadline = deadline if deadline is not None else time.monotonic() + 30.0
        while True:
            message = self.read_message(deadline)
            if message.type == SIGNAL:
                self.signals.append(message)
            elif message.type in (METHOD_RETURN, ERROR) and message.fields.get(REPLY_SERIAL) == serial:
                if message.type == ERROR:
                    text = message.body[0] if message.body and isinstance(message.body[0], str) else ""
                    raise DBusError(message.fields.get(ERROR_NAME, "org.freedesktop.DBus.Error.Failed"), text)
                return message.body

    def wait_signal(self, wanted, deadline: float) -> Message:
        """The first signal (already received or to come) for which wanted(message) is true."""
        while True:
            for index, message in enumerate(self.signals):
                if wanted(message):
                    return self.signals.pop(index)
            self.signals.clear()
            message = self.read_message(deadline)
            if message.type == SIGNAL:
                self.signals.append(message)


def system_bus_address() -> str:
    return os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or SYSTEM_BUS


def connect_systemd(timeout: float = 10.0) -> Connection:
    """A connection on which systemd answers: the system bus, else systemd's private socket (root only)."""
    try:
        return Connection.open(system_bus_address(), bus=True, timeout=timeout)
    except DBusError as bus_error:
        try:
            return Connection.open(SYSTEMD_PRIVATE, bus=False, timeout=timeout)
        except DBusError as private_error:
            raise CgroupError(f"cannot reach systemd: system bus: {bus_error.message}; "
                              f"private socket: {private_error.message}") from None
