"""The simulator's faults at random rates (the year benchmark's network) and a fault withdrawn."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from bot.simulator import Simulator, SimulatorSettings
from bot.simulator.state import FaultRates

KEY = "3f2a9c1e-aaaa-4bbb-8ccc-1234567890ab"
WEBHOOK = "/cgi-bin/webhook/send"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    settings = SimulatorSettings(corp_id="wx5823bf96d3bd56c7", secret="s3cret", agent_id=1000002,
                                 callback_token="QDG6eK", encoding_aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
                                 callback_url=None, robots={KEY: "工作群"}, users={"zhangsan": "张三"},
                                 robot_limit_per_minute=1000)
    simulator = Simulator(settings)
    simulator.start()
    yield simulator
    simulator.stop()


def post(sim: Simulator, content: str) -> requests.Response:
    return requests.post(f"{sim.url}{WEBHOOK}", params={"key": KEY}, json={"msgtype": "text", "text": {"content": content}},
                         timeout=5)


def test_rates_of_one_and_zero_fault_every_call_or_none(sim: Simulator) -> None:
    sim.set_fault_rates(FaultRates(busy=1.0), seed=1)
    assert [post(sim, str(n)).json()["errcode"] for n in range(3)] == [-1, -1, -1]
    assert sim.fault_rates is not None and sim.fault_rates.drawn == {f"{WEBHOOK} busy": 3}
    sim.set_fault_rates(FaultRates(http_5xx=0.0))
    assert post(sim, "ok").json()["errcode"] == 0
    assert [m["text"]["content"] for m in sim.group_messages(KEY)] == ["ok"]


def test_rates_draw_each_kind_in_proportion_and_only_on_sending_paths(sim: Simulator) -> None:
    sim.set_fault_rates(FaultRates(http_5xx=0.25, too_frequent=0.25), seed=7)
    answers = [post(sim, str(n)) for n in range(200)]
    five_xx = sum(a.status_code == 502 for a in answers)
    frequent = sum(a.status_code == 200 and a.json()["errcode"] == 45009 for a in answers)
    assert 25 <= five_xx <= 75 and 25 <= frequent <= 75
    assert len(sim.group_messages(KEY)) == 200 - five_xx - frequent
    token = requests.get(f"{sim.url}/cgi-bin/gettoken", params={"corpid": "wx5823bf96d3bd56c7", "corpsecret": "s3cret"},
                         timeout=5).json()
    assert token["errcode"] == 0  # gettoken is not a sending path


def test_a_timeout_delivers_the_message_but_answers_too_late(sim: Simulator) -> None:
    sim.set_fault_rates(FaultRates(timeout=1.0, timeout_seconds=0.3))
    with pytest.raises(requests.Timeout):
        requests.post(f"{sim.url}{WEBHOOK}", params={"key": KEY}, json={"msgtype": "text", "text": {"content": "x"}},
                      timeout=0.1)
    sim.set_fault_rates(None)
    post(sim, "y")
    assert [m["text"]["content"] for m in sim.group_messages(KEY)] == ["x", "y"]


def test_a_fault_for_ever_ends_when_withdrawn(sim: Simulator) -> None:
    fault = sim.inject(WEBHOOK, errcode=60020, times=-1)
    assert post(sim, "a").json()["errcode"] == 60020
    sim.withdraw(WEBHOOK, fault)
    assert post(sim, "b").json()["errcode"] == 0
