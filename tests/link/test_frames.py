"""The frame decoder on its own: any split of the byte stream gives the same frames back."""

from __future__ import annotations

import os

import pytest

from tracking_core.link import frames

PAYLOADS = [b"", b"x" * 10, os.urandom(70 * 1024), os.urandom(frames.CHUNK), os.urandom(3)]
WIRE = b"".join(
    frames.frame(frames.DATA | (frames.END if n == len(PAYLOADS) - 1 else 0), 1 + n % 2, payload)
    for n, payload in enumerate(PAYLOADS)
)


@pytest.mark.parametrize(
    "piece",
    [1, 7, frames.HEADER_SIZE, 4096, 64 * 1024 + 1, 256 * 1024, len(WIRE)],
    ids=["bytewise", "7", "header-sized", "4-KiB", "64-KiB+1", "256-KiB-reads", "all-at-once"],
)
def test_frames_come_out_whole_however_the_bytes_are_split(piece: int) -> None:
    seen: list[tuple[int, bool, int, bytes]] = []
    decoder = frames.Decoder(lambda kind, end, stream, payload: seen.append((kind, end, stream, bytes(payload))))
    for at in range(0, len(WIRE), piece):
        decoder.feed(WIRE[at : at + piece])
    assert seen == [(frames.DATA, n == len(PAYLOADS) - 1, 1 + n % 2, payload) for n, payload in enumerate(PAYLOADS)]


def test_an_oversized_frame_is_refused_before_its_payload_arrives() -> None:
    decoder = frames.Decoder(lambda *frame: None)
    with pytest.raises(frames.ProtocolError):
        decoder.feed(frames.HEADER.pack(frames.DATA, 1, frames.MAX_FRAME + 1))
