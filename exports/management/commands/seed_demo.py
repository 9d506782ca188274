import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from exports.demo import add_demo_rows, ensure_demo_domain
from exports.models import FormSubmission


class Command(BaseCommand):
    help = ("Create the demo login (its password set only then) and the demo domain with some rows, and print "
            "where to log in.")

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")
        parser.add_argument("--rows", type=int, default=int(os.environ.get("DEMO_ROWS", 5_000)),
                            help="demo rows the demo domain should have at least (env DEMO_ROWS)")
        parser.add_argument("--url", default=f"http://{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}/")

    def handle(self, *args, username, rows, url, **options):
        password = self._password()
        user, created = get_user_model().objects.get_or_create(username=username)
        # An ordinary member of the demo domain: a password printed on a terminal opens no admin.
        user.is_staff = user.is_superuser = False
        user.email = user.email or f"{username}@example.com"
        if created:  # a password changed since (e.g. through the reset link) is the user's, kept across restarts
            user.set_password(password)
        user.save()
        domain = ensure_demo_domain(members=[user])
        missing = rows - FormSubmission.objects.filter(domain=domain).count()
        if missing > 0:
            add_demo_rows(domain, missing)
        if created or user.check_password(password):
            self.stdout.write(self.style.SUCCESS(f"Open {url} and log in as {username} / {password}"))
        else:
            self.stdout.write(self.style.SUCCESS(
                f"Open {url} and log in as {username} with the password you gave it (changed since it was made, "
                f"so kept as it is; forgotten? the login page's reset link)"))
        self.stdout.write("More demo rows: ./run.sh manage seed_demo_rows --rows 1000000")

    def _password(self):
        """DEMO_PASSWORD, else a random one kept in .run/ so it stays the same between runs."""
        if os.environ.get("DEMO_PASSWORD"):
            return os.environ["DEMO_PASSWORD"]
        path = settings.BASE_DIR / ".run" / "demo-password"
        path.parent.mkdir(mode=0o700, exist_ok=True)
        try:  # for this user only, whatever the umask
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
                file.write(secrets.token_urlsafe(12))
        except FileExistsError:
            os.chmod(path, 0o600)  # a file from before this rule
        return path.read_text().strip()
