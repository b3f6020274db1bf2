import pytest

from tests.cameo.verification.recording import make_recording, reencode

DIGITS = ["4", "7", "1", "9", "0", "2"]
TURNS = ["left", "right", "left"]

# name -> how it is made; each is built once per session, on first use.
CASES = {
    "good": {},
    "retake": {"digits": ["5", "3", "8", "8", "6", "0"], "turns": ["right", "left", "right"]},
    "no_face": {"face": False},
    "two_faces": {"second_face": True},
    "silent": {"speech": False},
    "no_audio": {"audio_track": False},
    "mirrored": {"mirror": True},
    "sideways": {"stored_rotation": 90},
    "screen": {"screen": True},
}


@pytest.fixture(scope="session")
def recording(tmp_path_factory):
    folder = tmp_path_factory.mktemp("liveness")
    made: dict[str, str] = {}

    def get(name: str) -> str:
        if name not in made:
            path = folder / f"{name}.mp4"
            if name == "replay":
                reencode(get("good"), path, scale=0.75, crf=30)
            else:
                options = {"digits": DIGITS, "turns": TURNS, **CASES[name]}
                make_recording(path, **options)
            made[name] = str(path)
        return made[name]

    return get
