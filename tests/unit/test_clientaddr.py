"""Who a request comes from (apps/kit/clientaddr.py) and TRUSTED_PROXIES."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import ValidationError

from apps.kit.clientaddr import client_address, limit_key, parse_address
from apps.kit.settings import KitSettings

TRUSTED = KitSettings().trusted_proxies


@pytest.mark.parametrize(("peer", "forwarded", "client"), [
    ("203.0.113.5", [], "203.0.113.5"),                          # no proxy
    ("203.0.113.5", ["198.51.100.7"], "203.0.113.5"),            # an untrusted peer's word is ignored
    ("127.0.0.1", ["198.51.100.7"], "198.51.100.7"),             # Caddy on loopback names the client
    ("172.18.0.9", ["198.51.100.7"], "198.51.100.7"),            # Caddy on compose's network
    ("127.0.0.1", ["6.6.6.6, 198.51.100.7"], "198.51.100.7"),    # the rightmost untrusted hop
    ("127.0.0.1", ["6.6.6.6", "10.0.0.2, 198.51.100.7, 10.0.0.3"], "198.51.100.7"),
    ("127.0.0.1", [], "127.0.0.1"),                              # a trusted peer speaking for itself
    ("127.0.0.1", ["127.0.0.9"], "127.0.0.9"),                   # all trusted: the farthest
    ("127.0.0.1", ["6.6.6.6, junk, 10.0.0.2"], "10.0.0.2"),      # the walk ends at a broken hop
    ("::ffff:198.51.100.7", [], "198.51.100.7"),                 # IPv4-mapped is IPv4
    (None, ["198.51.100.7"], None),                              # no peer address (a unix socket)
])
def test_the_client_is_the_peer_unless_a_trusted_proxy_names_another(peer, forwarded, client):
    found = client_address(peer, forwarded, TRUSTED)
    assert found == (ipaddress.ip_address(client) if client else None)


def test_an_ipv6_client_counts_by_its_64_and_an_ipv4_one_by_itself():
    one, other = parse_address("2001:db8:1:2::1"), parse_address("2001:db8:1:2:ffff::9")
    assert one is not None and other is not None
    assert limit_key(one) == limit_key(other) == "2001:db8:1:2::/64"
    assert limit_key(parse_address("2001:db8:1:3::1")) != limit_key(one)  # type: ignore[arg-type]
    assert limit_key(parse_address("198.51.100.7")) == "198.51.100.7"  # type: ignore[arg-type]
    assert parse_address("?") is None and parse_address("") is None and parse_address(None) is None


def test_trusted_proxies_are_comma_separated_cidrs(monkeypatch):
    monkeypatch.setenv("TRUSTED_PROXIES", "10.1.0.0/16, 2001:db8::/32")
    assert [str(n) for n in KitSettings().trusted_proxies] == ["10.1.0.0/16", "2001:db8::/32"]
    monkeypatch.setenv("TRUSTED_PROXIES", "")
    assert KitSettings().trusted_proxies == ()  # nobody is believed
    monkeypatch.setenv("TRUSTED_PROXIES", "10.1.0.0/33")
    with pytest.raises(ValidationError):
        KitSettings()
