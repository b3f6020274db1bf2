"""Seeds the database named by DATABASE_URL for the PostgreSQL fault test and prints what it
made as JSON: users with API keys and unpublished drafts (the first ``POSTS`` of them the
first user's, for the test to publish before its traffic starts).

Run as ``python -m tests.fault.seed_feed USERS POSTS DRAFTS`` against a migrated database. The
drafts are written the way a worker writes a finished clip.
"""

from __future__ import annotations

import json
import os
import sys


def main(users: int, posts: int, drafts: int) -> dict:
    from accounts.services import api_key_create
    from tests.factories import UserFactory
    from tests.feed.helpers import draft

    people = [UserFactory() for _ in range(users)]

    def made(owner: int, prompt: str) -> dict:
        clip = draft(people[owner], prompt=prompt)
        return {"video_id": clip.job.public_id, "clip_pk": str(clip.pk), "owner": owner}

    return {
        "users": [
            {"id": str(person.pk), "key": api_key_create(user=person, name="fault")[1]}
            for person in people
        ],
        "post_drafts": [made(0, f"a blue cube slides on ice {i}") for i in range(posts)],
        "drafts": [made(i % users, f"a kite over a beach {i}") for i in range(drafts)],
    }


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    counts = [int(arg) for arg in sys.argv[1:4]]
    print(json.dumps(main(*counts)))
