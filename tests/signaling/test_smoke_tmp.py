import pytest

pytestmark = pytest.mark.django_db(transaction=True)


async def test_two_join_and_relay(alice, bob, room, join):
    a = await join(alice, room)
    b = await join(bob, room)
    assert b.welcome["peers"][0]["name"] == "Alice"
    joined = await a.receive_type("peer-joined")
    assert joined["peer"]["name"] == "Bob"
    await b.send({"type": "offer", "to": a.peer_id, "sdp": "v=0"})
    got = await a.receive_type("offer")
    assert got == {"type": "offer", "from": b.peer_id, "sdp": "v=0"}
    await a.send({"type": "chat", "body": "hi"})
    c1 = await a.receive_type("chat")
    c2 = await b.receive_type("chat")
    assert c1 == c2
    await b.send({"type": "leave"})
    left = await a.receive_type("peer-left")
    assert left["reason"] == "left"
