"""The URL fetch guard (SSRF): the address policy, and that a forbidden address is never connected
to, after DNS and on every redirect hop."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl

import httpcore
import httpx
import pytest
from _inputs_helpers import (
    CountingListener,
    assert_refused,
    http_server,
    image_bytes,
    send,
    url,
)

from wanimage.config import Settings
from wanimage.core.inputs import ImageFetcher
from wanimage.core.netguard import (
    BlockedAddressError,
    GuardedNetworkBackend,
    guarded_transport,
    is_public_address,
)
from wanimage.errors import InvalidParameter

FORBIDDEN = [
    "127.0.0.1", "127.0.0.2", "0.0.0.0", "10.0.0.1", "172.16.5.4", "192.168.1.1",
    "169.254.169.254", "169.254.1.1", "100.64.0.1", "100.127.255.254", "224.0.0.1",
    "239.255.255.250", "240.0.0.1", "255.255.255.255", "192.0.2.1", "198.18.0.1",
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "fec0::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a00:1",
    "2002:7f00:1::", "2001:db8::1",
]  # fmt: skip
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", FORBIDDEN)
def test_default_policy_forbids(address):
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_default_policy_allows_public(address):
    assert is_public_address(ipaddress.ip_address(address))


@pytest.fixture
def connects(monkeypatch):
    """Every socket connect attempted in the process, recorded before it happens."""
    calls = []
    original = socket.socket.connect

    def recording(self, address):
        calls.append(address)
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", recording)
    return calls


def fake_dns(monkeypatch, table: dict[str, list[str]]) -> list[str]:
    """Make `socket.getaddrinfo` answer `table`'s names; returns the names looked up."""
    looked_up = []
    original = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name in table:
            looked_up.append(name)
            answers = table[name]
            if callable(answers):
                answers = answers()
            return [
                (
                    socket.AF_INET6 if ":" in a else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (a, port, 0, 0) if ":" in a else (a, port),
                )
                for a in answers
            ]
        return original(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


def refused(ref: str, position: int = 1, policy=None, **settings) -> InvalidParameter:
    fetcher = ImageFetcher(Settings(**settings), address_allowed=policy)
    with pytest.raises(InvalidParameter) as info:
        asyncio.run(fetcher.fetch(ref, position))
    return info.value


def only(address: str):
    allowed = ipaddress.ip_address(address)
    return lambda ip: ip == allowed


# -- the default policy, end to end ---------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_listener_never_reached(host, connects):
    with CountingListener("127.0.0.1") as listener:
        exc = refused(f"http://{host}:{listener.port}/x.png", 2)
    assert listener.accepted == 0 and connects == []
    assert_refused(exc, 2, "private or loopback address")
    assert "(127.0.0.1)" in exc.message or "(::1)" in exc.message
    assert "use a public URL or send the image as base64" in exc.message


def test_ipv6_loopback_listener_never_reached(connects):
    try:
        listener = CountingListener("::1")
    except OSError:  # no IPv6 loopback on this machine: the refusal must still come before connecting
        exc = refused("http://[::1]:8080/x.png", 1)
        assert connects == []
        assert_refused(exc, 1, "(::1)")
        return
    with listener:
        exc = refused(f"http://[::1]:{listener.port}/x.png", 1)
    assert listener.accepted == 0 and connects == []
    assert_refused(exc, 1, "(::1)")


@pytest.mark.parametrize(
    "ref, address",
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://10.0.0.1/x.png", "10.0.0.1"),
        ("https://10.0.0.1/x.png", "10.0.0.1"),
        ("http://[::ffff:169.254.169.254]/", "::ffff:a9fe:a9fe"),
        ("http://100.64.0.1/", "100.64.0.1"),
    ],
)
def test_internal_addresses_refused_before_connecting(ref, address, connects):
    assert_refused(refused(ref, 3), 3, f"({address})")
    assert connects == []  # not a single packet towards them


def test_name_resolving_to_loopback_refused(monkeypatch, connects):
    fake_dns(monkeypatch, {"evil.test": ["127.0.0.1"]})
    with CountingListener("127.0.0.1") as listener:
        exc = refused(f"http://evil.test:{listener.port}/x.png")
    assert_refused(exc, 1, "(127.0.0.1)")
    assert listener.accepted == 0 and connects == []


def test_name_with_one_private_answer_refused(monkeypatch, connects):
    fake_dns(monkeypatch, {"mixed.test": ["93.184.216.34", "10.1.2.3"]})
    assert_refused(refused("http://mixed.test/x.png"), 1, "(10.1.2.3)")
    assert connects == []


def test_dns_failure_is_a_client_error(monkeypatch):
    def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    assert_refused(refused("http://no-such-host.test/x.png"), 1, "could not connect")


def test_connects_to_the_address_it_checked(monkeypatch, connects):
    """DNS rebinding: the name is resolved once, and the checked answer is the one dialled."""
    answers = iter([["127.0.0.1"], ["127.0.0.2"], ["127.0.0.2"]])
    looked_up = fake_dns(monkeypatch, {"rebind.test": lambda: next(answers)})
    data = image_bytes("PNG")
    with http_server(lambda r: send(r, data)) as server:
        fetcher = ImageFetcher(Settings(), address_allowed=only("127.0.0.1"))
        port = server.server_address[1]
        img = asyncio.run(fetcher.fetch(f"http://rebind.test:{port}/x.png", 1))
    assert img.data == data
    assert looked_up == ["rebind.test"]
    assert connects == [("127.0.0.1", port)]


# -- redirects and the injected policy ----------------------------------------------------------


def test_redirect_to_forbidden_address_never_connects(connects):
    with CountingListener("127.0.0.2") as listener:
        target = f"http://127.0.0.2:{listener.port}/secret.png"
        with http_server(
            lambda r: send(r, b"", status=302, headers={"Location": target})
        ) as server:
            exc = refused(url(server), 2, policy=only("127.0.0.1"))
        assert server.hits == 1
    assert listener.accepted == 0
    assert all(address[0] == "127.0.0.1" for address in connects)
    assert_refused(exc, 2, "(127.0.0.2)")


def test_redirect_via_name_to_forbidden_address(monkeypatch):
    fake_dns(monkeypatch, {"evil.test": ["127.0.0.2"]})
    with CountingListener("127.0.0.2") as listener:
        target = f"http://evil.test:{listener.port}/"
        with http_server(
            lambda r: send(r, b"", status=301, headers={"Location": target})
        ) as server:
            assert_refused(refused(url(server), policy=only("127.0.0.1")), 1, "(127.0.0.2)")
    assert listener.accepted == 0


def test_injected_policy_allows_and_allow_private_urls_allows_all():
    data = image_bytes("JPEG")
    with http_server(lambda r: send(r, data, content_type="image/jpeg")) as server:
        allowed = ImageFetcher(Settings(), address_allowed=only("127.0.0.1"))
        assert asyncio.run(allowed.fetch(url(server), 1)).format == "JPEG"
        everything = ImageFetcher(Settings(allow_private_urls=True))
        assert asyncio.run(everything.fetch(url(server), 1)).data == data
        assert_refused(refused(url(server)), 1, "(127.0.0.1)")  # default policy: no
    with http_server(lambda r: send(r, data), host="127.0.0.2") as server:
        # allow_private_urls wins over an injected policy
        everything = ImageFetcher(
            Settings(allow_private_urls=True), address_allowed=only("1.1.1.1")
        )
        assert asyncio.run(everything.fetch(url(server), 1)).data == data


# -- the backend on its own ---------------------------------------------------------------------


def test_backend_raises_blocked_without_connecting(connects):
    backend = GuardedNetworkBackend(is_public_address)
    with pytest.raises(BlockedAddressError) as info:
        asyncio.run(backend.connect_tcp("169.254.169.254", 80, timeout=1))
    assert str(info.value.address) == "169.254.169.254" and connects == []
    with pytest.raises(httpcore.ConnectError):
        asyncio.run(backend.connect_unix_socket("/var/run/docker.sock"))


def test_guarded_transport_installs_the_backend():
    transport = guarded_transport(is_public_address)
    assert isinstance(transport._pool._network_backend, GuardedNetworkBackend)


def self_signed(tmp_path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting it) for a certificate naming only `name`."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = tmp_path / "cert.pem"
    key_pem = tmp_path / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_pem, key_pem)
    client = ssl.create_default_context(cafile=str(cert_pem))
    return server, client


def test_https_verifies_the_name_while_dialling_the_checked_ip(tmp_path, monkeypatch, connects):
    """The guard dials an IP, yet TLS still sends SNI and verifies the certificate for the name."""
    server_ctx, client_ctx = self_signed(tmp_path, "img.test")
    fake_dns(monkeypatch, {"img.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    data = image_bytes("PNG")

    async def get(host: str, port: int) -> httpx.Response:
        transport = guarded_transport(only("127.0.0.1"), verify=client_ctx)
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.get(f"https://{host}:{port}/x.png")

    with http_server(lambda r: send(r, data), tls=server_ctx) as server:
        port = server.server_address[1]
        response = asyncio.run(get("img.test", port))
        assert response.status_code == 200 and response.content == data
        with pytest.raises(httpx.ConnectError, match="(?i)certificate|hostname"):
            asyncio.run(get("other.test", port))  # same IP, wrong name: verification fails
    assert connects and all(address == ("127.0.0.1", port) for address in connects)
