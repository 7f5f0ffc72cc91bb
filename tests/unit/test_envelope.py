import json

import pytest

from apps.kit.envelope import Envelope, MalformedEnvelope


def valid(**changes) -> dict:
    data = {"id": "ab12", "from": "ping", "to": "pong", "kind": "shot", "body": {"hit": 1},
            "sent_at": 1000.0, "deadline": 1000.5}
    data.update(changes)
    return data


def test_round_trip_keeps_the_wire_names():
    envelope = Envelope.parse(json.dumps(valid()))
    assert envelope.sender == "ping"
    wire = json.loads(envelope.to_json())
    assert wire["from"] == "ping" and "sender" not in wire
    assert Envelope.parse(envelope.to_json()) == envelope


def test_defaults_give_an_id_and_a_timestamp():
    envelope = Envelope(sender="ping", to="pong", kind="shot")
    assert len(envelope.id) == 32 and envelope.sent_at > 0 and envelope.deadline is None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (valid(to="Not A Name"), "to"),
        (valid(**{"from": ""}), "from"),
        (valid(kind=""), "kind"),
        (valid(id="xyz!"), "id"),
        (valid(sent_at="yesterday"), "sent_at"),
        ({k: v for k, v in valid().items() if k != "to"}, "to"),
    ],
)
def test_invalid_envelopes_name_the_field(data, field):
    with pytest.raises(MalformedEnvelope, match=field):
        Envelope.parse(json.dumps(data))


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"", b"\xff\xfe"])
def test_garbage_is_malformed(raw):
    with pytest.raises(MalformedEnvelope):
        Envelope.parse(raw)


def test_deadline():
    envelope = Envelope.parse(json.dumps(valid()))
    assert not envelope.expired(now=1000.4)
    assert envelope.expired(now=1000.6)
    assert not Envelope.parse(json.dumps(valid(deadline=None))).expired(now=9e9)
