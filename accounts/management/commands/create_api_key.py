import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services import api_key_create, user_create
from core.errors import MontageError


class Command(BaseCommand):
    help = "Print a new API key for HANDLE (creating the user with --create-user)."

    def add_arguments(self, parser):
        parser.add_argument("handle")
        parser.add_argument("--create-user", action="store_true", help="create the user if missing")
        parser.add_argument("--name", default="cli", help="a label for the key")
        parser.add_argument(
            "--birth-date",
            type=dt.date.fromisoformat,
            help="for --create-user (YYYY-MM-DD); without one the account gets teen protections",
        )

    def handle(self, *args, **options):
        handle = User.normalize_handle(options["handle"])
        user = User.objects.filter(handle=handle).first()
        if user is None:
            if not options["create_user"]:
                raise CommandError(f"no user @{handle}; pass --create-user to create it")
            try:
                user = user_create(handle=handle, birth_date=options["birth_date"])
            except MontageError as exc:
                raise CommandError(str(exc.detail)) from exc
            self.stderr.write(f"created user @{handle}")
        elif not user.is_active:
            # A key for a disabled account would be refused on every request.
            raise CommandError(f"@{handle} is disabled")
        _, raw = api_key_create(user=user, name=options["name"])
        self.stdout.write(raw)
