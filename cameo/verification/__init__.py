"""Liveness verification of cameo recordings, with what runs offline.

``challenge_new()`` makes a challenge; ``verify_recording(path, digits=, turns=,
known_fingerprints=)`` checks one recording against it and returns a
:class:`VerificationResult`: a decision (``pass`` / ``fail`` / ``review``), one reason per
check, the recording's fingerprint (compare with :func:`fingerprints_match`), reference face
crops and the voice sample.
"""

from cameo.verification.challenge import challenge_new
from cameo.verification.decode import Limits
from cameo.verification.replay import aligned_share, fingerprints_match
from cameo.verification.verify import VerificationResult, verify_recording

__all__ = [
    "Limits",
    "VerificationResult",
    "aligned_share",
    "challenge_new",
    "fingerprints_match",
    "verify_recording",
]
