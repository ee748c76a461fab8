# SPDX-License-Identifier: Apache-2.0
"""/metrics under idle connections: sockets that connect and say nothing must not lock
the scrape out. One address is held to a per-address limit (the rest are closed at
once), the overall limit is far above what scrapers need, and a silent connection is
closed after a few seconds."""
import socket
import time
import urllib.request

import pytest

from sy import free_port, spec_yaml

PER_IP_LIMIT = 64  # prom.c


@pytest.fixture
def metrics(redis_pair, daemon_factory):
    legacy, target = redis_pair
    port = free_port()
    daemon_factory(spec_yaml([{"name": "m", "legacy": [legacy.addr], "target": [target.addr]}]),
                   extra=["--metrics", "127.0.0.1:%d" % port])
    return port


def idle(port, src, n):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))  # the backlog completes it, accepted or not
        socks.append(s)
    return socks


def scrape_time(port):
    t0 = time.monotonic()
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        body = r.read().decode()
        assert r.status == 200
    assert "switchyard_" in body
    return time.monotonic() - t0


def closed_by_server(socks, within):
    """Sockets the server has closed (EOF or reset) within `within` seconds."""
    time.sleep(within)
    n = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                n += 1
        except BlockingIOError:
            pass
        except ConnectionResetError:
            n += 1
    return n


def close_all(socks):
    for s in socks:
        s.close()


def test_scrape_answers_while_one_address_holds_300_idle_sockets(metrics):
    socks = idle(metrics, "127.0.0.2", 300)
    try:
        time.sleep(0.3)  # let the server accept (and refuse) them
        took = scrape_time(metrics)
        assert took < 1.0, "scrape took %.2fs with 300 idle sockets" % took
        # what 127.0.0.2 got beyond its limit was closed at once
        gone = closed_by_server(socks, 0.5)
        assert gone >= 300 - PER_IP_LIMIT, "only %d of 300 closed" % gone
    finally:
        close_all(socks)


def test_scrape_answers_while_many_addresses_hold_300_idle_sockets(metrics):
    socks = []
    try:
        for i in range(10):  # 30 each: under the per-address limit, all accepted
            socks += idle(metrics, "127.0.0.%d" % (10 + i), 30)
        time.sleep(0.3)
        took = scrape_time(metrics)
        assert took < 1.0, "scrape took %.2fs with 300 idle sockets" % took
        assert closed_by_server(socks, 0) == 0
        # silent connections do not stay: the idle timeout (a few seconds) closes them
        assert closed_by_server(socks, 5) == 300
    finally:
        close_all(socks)
