"""The meeting around the call: raised hands, reactions and who records (docs/protocol.md,
`hand`, `reaction` and `recording`).

A hand belongs to the seat (Presence.hand_raised_at): it survives a resumed socket, is in
every newcomer's welcome, and goes with the seat. Reactions are moments, not state:
nothing about them is stored, so the only rule here is which ones exist. A recording
happens in its moderator's browser; what the server keeps is that it is happening, so
that every page, a latecomer's too, shows it for as long as it lasts.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import F
from django.utils import timezone

from rooms.models import Presence

# Stable names the page draws (static/js/reactions.js); the order is the page's order.
REACTIONS = ("thumbs-up", "clap", "laugh", "heart", "party", "surprised")


def set_hand(peer_id: str, *, raised: bool) -> datetime | None:
    """Raise or lower a seat's hand; returns when it is raised now (None: down, or no such
    seat). Raising a raised hand keeps its time, so its place in the queue."""
    seat = Presence.objects.filter(peer_id=peer_id)
    if not raised:
        seat.update(hand_raised_at=None)
        return None
    # One statement whichever came first: a second tab's raise cannot move the hand back.
    seat.filter(hand_raised_at__isnull=True).update(hand_raised_at=timezone.now())
    return seat.values_list("hand_raised_at", flat=True).first()


def hand_queue(room_id: int) -> list[Presence]:
    """The room's raised hands, first raised first (the order every page shows)."""
    return list(
        Presence.objects.filter(room_id=room_id, hand_raised_at__isnull=False).order_by(
            F("hand_raised_at").asc(), "peer_id"
        )
    )


class NotModerator(Exception):  # noqa: N818 - a refusal, not a programming error
    """Only moderators record (the protocol's `forbidden` / `not_moderator`)."""


def set_recording(peer_id: str, *, on: bool) -> Presence | None:
    """Mark a seat as recording, or not. Returns the seat when that changed (to announce),
    None when it was so already or the seat is gone. Starting is for moderators; anyone
    may stop their own."""
    seat = Presence.objects.filter(peer_id=peer_id).first()
    if seat is None:
        return None
    if on and not seat.is_moderator:
        raise NotModerator("only moderators may record the meeting")
    since = timezone.now() if on else None
    changed = Presence.objects.filter(pk=seat.pk, recording_since__isnull=on).update(
        recording_since=since
    )
    if not changed:
        return None
    seat.recording_since = since
    return seat


def stop_recording(peer_id: str) -> bool:
    """The seat's socket dropped: its recording has ended with it (the page stops its
    recorder when it loses the socket). True if it was recording."""
    return (
        Presence.objects.filter(peer_id=peer_id, recording_since__isnull=False).update(
            recording_since=None
        )
        > 0
    )
