from qtts.resident import wire


def test_frames_survive_any_split() -> None:
    stream = (
        wire.pack(wire.PROGRESS, "chunk 1/2 ✓".encode())
        + wire.pack(wire.AUDIO, bytes(range(256)) * 40)
        + wire.pack_json(wire.RESULT, {"ok": True})
    )
    for size in (1, 3, 5, 7, 4096, len(stream)):
        reader = wire.Reader()
        frames = [f for i in range(0, len(stream), size) for f in reader.feed(stream[i : i + size])]
        assert [k for k, _ in frames] == [wire.PROGRESS, wire.AUDIO, wire.RESULT]
        assert frames[0][1].decode() == "chunk 1/2 ✓" and frames[1][1] == bytes(range(256)) * 40
        assert reader.pending == 0


def test_a_cut_stream_leaves_a_pending_frame_and_junk_is_refused() -> None:
    reader = wire.Reader()
    assert list(reader.feed(wire.pack(wire.AUDIO, b"x" * 100)[:50])) == [] and reader.pending == 50
    try:
        list(wire.Reader().feed(b"zjunk"))
    except ValueError as exc:
        assert "unknown frame kind" in str(exc)
    else:
        raise AssertionError("junk accepted")
