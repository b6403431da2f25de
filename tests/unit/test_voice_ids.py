import pytest

from qtts.errors import BadInput
from qtts.voices import VoiceLibrary, validate_voice_id


@pytest.mark.parametrize("voice_id", ["a", "alice", "bob-2", "x_y", "0abc", "a" * 64])
def test_valid_ids(voice_id):
    assert validate_voice_id(voice_id) == voice_id


@pytest.mark.parametrize("voice_id", ["", "Alice", "-x", "_x", "a b", "../etc", "a/b", "a.b", "a" * 65, "é", "a\n"])
def test_invalid_ids_are_rejected_with_a_hint(voice_id):
    with pytest.raises(BadInput) as info:
        validate_voice_id(voice_id)
    assert "lowercase" in info.value.hint


def test_path_traversal_never_touches_the_filesystem(tmp_path):
    library = VoiceLibrary(tmp_path / "voices")
    outside = tmp_path / "secret"
    outside.mkdir()
    with pytest.raises(BadInput):
        library.delete("../secret")
    assert outside.exists()
