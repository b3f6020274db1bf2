import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.services import api_key_create, user_create, user_follow

DEMO_PASSWORD = "montage-demo-password"  # noqa: S105 - printed for the local demo only


def years_ago(years: int, today: dt.date) -> dt.date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February in a year without one
        return today.replace(year=today.year - years, day=28)


def demo_users(today: dt.date) -> list[tuple[str, str, dt.date, bool]]:
    """(handle, display name, birth date, staff)."""
    return [
        ("ava", "Ava Demo", dt.date(1994, 5, 17), False),
        ("ben", "Ben Demo", dt.date(1989, 11, 2), False),
        ("teo", "Teo Demo (teen)", years_ago(15, today), False),
        ("staff", "T&S Staff", dt.date(1985, 1, 9), True),
    ]


class Command(BaseCommand):
    help = "Create a small demo (a few users who follow each other) and print fresh API keys."

    @transaction.atomic
    def handle(self, *args, **options):
        if settings.PRODUCTION:
            # Safety: it prints working keys for whoever holds these handles, staff included.
            raise CommandError("seed_demo refuses to run with MONTAGE_ENV=production")
        users = {}
        for handle, name, born, staff in demo_users(timezone.localdate()):
            user = User.objects.filter(handle=handle).first()
            if user is None:
                user = user_create(
                    handle=handle,
                    password=DEMO_PASSWORD,
                    display_name=name,
                    birth_date=born,
                    is_staff=staff,
                )
            users[handle] = user
        user_follow(follower=users["ava"], followee=users["ben"])
        user_follow(follower=users["ben"], followee=users["ava"])
        user_follow(follower=users["teo"], followee=users["ava"])
        self.stdout.write(f"Demo users (password: {DEMO_PASSWORD}):")
        for handle, user in users.items():
            # Keys are stored hashed, so each run prints new ones.
            _, raw = api_key_create(user=user, name="demo")
            role = "staff" if user.is_staff else user.age_band
            self.stdout.write(f"  @{handle:<6} {role:<6} api key: {raw}")
