"""The moderation policy in one place: severities, decisions, and reason templates."""

from __future__ import annotations

# How bad a case of each category is (1 low .. 5 critical): the first key of queue order.
SEVERITY = {
    "minors": 5,
    "hash_match": 5,
    "self_harm": 4,
    "violence": 4,
    "cameo_misuse": 4,
    "sexual": 3,
    "hate": 3,
    "harassment": 3,
    "real_person": 3,
    "cameo_restriction": 3,
    "rights": 2,
    "screening_unavailable": 2,
    "remix_of_removed": 2,
    "spam": 1,
    "other": 1,
}

QUEUES = {
    "reports": "User reports",
    "screening": "Automatic screening holds",
    "remix_review": "Remixes of removed clips",
    "cameo_verification": "Cameo verification",
    "escalations": "Escalated",
}

# Decisions staff can take on a case; which ones need a senior moderator.
DECISIONS = {
    "approve": "No violation: dismiss and release",
    "reject": "Reject (verification queues)",
    "remove": "Remove permanently",
    "takedown_temporary": "Take down for a number of days",
    "age_restrict": "Age-restrict (hidden from teens)",
    "label": "Add a label",
    "strike": "Strike the owner",
    "suspend": "Suspend the owner",
}
SENIOR_DECISIONS = {"suspend"}
# Decisions that act against someone, so the reports behind them were right.
ENFORCEMENT = {"remove", "takedown_temporary", "age_restrict", "label", "strike", "suspend"}

# Reason templates: what the affected user and the reporters are told, by code.
REASON_TEMPLATES = {
    "no_violation": "We reviewed this and found that it does not break the rules.",
    "sexual_content": "It shows sexual content, which is not allowed here.",
    "minor_safety": "It sexualises or endangers minors, which is never allowed.",
    "graphic_violence": "It shows graphic violence.",
    "hate_speech": "It attacks people for who they are.",
    "self_harm": "It promotes or shows self-harm.",
    "harassment": "It harasses or threatens a person.",
    "likeness_misuse": "It uses a real person's likeness without their permission.",
    "rights_infringement": "It uses a protected character or brand without the rights holder's "
    "permission.",
    "derivative_of_removed": "It is a remix of a clip that was removed.",
    "mature_content": "It is not suitable for younger viewers.",
    "spam": "It is spam.",
    "verification_passed": "The verification was approved.",
    "verification_failed": "The verification could not be approved.",
}

REPORTABLE = ("clip", "user", "comment", "cameo")

# Comment screening (moderation.screening.comment_screen): comments are short and written to a
# person, so they are compared with the comment exemplars as well, against one threshold for
# every category, and a match must beat the nearest everyday comment by a margin. Chosen on a
# development set of comments, then measured on a separate labelled set
# (tests/moderation/comment_evalset.jsonl): see tests/moderation/test_comment_screening.py.
# Texts written to or by a teen account subtract MODERATION_TEEN_MARGIN as prompts do.
COMMENT_THRESHOLD = 0.48
COMMENT_BENIGN_MARGIN = 0.05

# Which decisions apply to which kind of subject (the clip decisions act on the clip's state).
SUBJECT_DECISIONS = {
    "clip": {
        "approve",
        "remove",
        "takedown_temporary",
        "age_restrict",
        "label",
        "strike",
        "suspend",
    },
    "comment": {"approve", "remove", "strike", "suspend"},
}
# Subjects whose removal can be restored from the case (POST .../cases/<id>/restore).
RESTORABLE = ("clip", "comment")
