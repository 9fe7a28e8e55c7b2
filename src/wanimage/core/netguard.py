"""Which addresses the server may fetch images from, enforced where the socket is opened.

The check lives in an httpcore network backend, not in a look-up before the request: the backend
resolves the host itself, checks every address it got against the policy and connects to one of
those very addresses. There is no second DNS look-up for an attacker to answer differently
(DNS rebinding), and redirects are covered because every hop opens its connection here.
"""

from __future__ import annotations

import ipaddress
import socket
import typing
from collections.abc import Callable, Iterable

import anyio
import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressPolicy = Callable[[IPAddress], bool]

# 64:ff9b::/96 (NAT64) carries an IPv4 address in its last 32 bits.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, Teredo, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # (server, client): the client is the host reached
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(ip: IPAddress) -> bool:
    """The default policy: only globally routable unicast addresses.

    Refuses loopback, private (RFC 1918, IPv6 ULA), link-local (169.254/16 with the cloud metadata
    endpoint, fe80::/10), multicast, reserved, unspecified and carrier-grade NAT (100.64/10), and
    IPv6 forms that embed one of those IPv4 addresses.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d on a dual-stack socket
            return is_public_address(ip.ipv4_mapped)
        embedded = _embedded_ipv4(ip)
        if embedded is not None and not is_public_address(embedded):
            return False
        if ip.is_site_local:
            return False
    if (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    ):
        return False
    return ip.is_global  # False for 100.64.0.0/10 and other special-purpose blocks


def allow_all(ip: IPAddress) -> bool:
    return True


class BlockedAddressError(Exception):
    """The host resolved to an address the policy forbids; nothing was sent to it."""

    def __init__(self, host: str, address: IPAddress) -> None:
        super().__init__(f"{host} resolves to {address}, which the address policy forbids")
        self.host = host
        self.address = address


def _getaddrinfo(host: str, port: int) -> list[IPAddress]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = ipaddress.ip_address(sockaddr[0])
        if ip not in addresses:
            addresses.append(ip)
    return addresses


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (an IP literal resolves to itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        addresses = await anyio.to_thread.run_sync(_getaddrinfo, host, port, abandon_on_cancel=True)
    except (OSError, UnicodeError) as exc:
        raise httpcore.ConnectError(f"could not resolve host {host!r}: {exc}") from exc
    if not addresses:
        raise httpcore.ConnectError(f"host {host!r} has no IPv4 or IPv6 address")
    return addresses


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks every address against `allowed`, then connects to a checked address."""

    def __init__(
        self, allowed: AddressPolicy, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self._allowed = allowed
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                addresses = await resolve(host, port)
                # One forbidden address refuses the host: a name that mixes public and private
                # answers is not one to trust.
                for ip in addresses:
                    if not self._allowed(ip):
                        raise BlockedAddressError(host, ip)
                return await self._connect_first(
                    addresses, port, timeout, local_address, socket_options
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"connecting to {host}:{port} timed out") from exc

    async def _connect_first(
        self,
        addresses: list[IPAddress],
        port: int,
        timeout: float | None,
        local_address: str | None,
        socket_options: Iterable[typing.Any] | None,
    ) -> httpcore.AsyncNetworkStream:
        last: Exception | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(ip),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are never used to fetch images")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(allowed: AddressPolicy, **kwargs: typing.Any) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose every connection goes through `GuardedNetworkBackend`.

    httpx 0.28 takes no network backend argument, so the pool it builds gets ours; the type check
    makes a future httpx that builds something else fail loudly instead of fetching unguarded.
    """
    kwargs.setdefault("trust_env", False)  # an environment proxy would bypass the address check
    transport = httpx.AsyncHTTPTransport(**kwargs)
    pool = transport._pool
    if type(pool) is not httpcore.AsyncConnectionPool or not hasattr(pool, "_network_backend"):
        raise RuntimeError("unexpected httpx transport internals; cannot guard image fetches")
    pool._network_backend = GuardedNetworkBackend(allowed)
    return transport
