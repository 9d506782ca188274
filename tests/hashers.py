"""A password hasher for the test process: Django's PBKDF2 with a thousandth of its iterations.

The same algorithm name, so a hash made here is checked by the web servers and workers the tests start
(which read the iterations from the hash, and bring it to the full count at the first login), and a hash
they make is checked here. Hashing a test user's password was 0.24 s of CPU, paid for every test with a user.
"""
from django.contrib.auth.hashers import PBKDF2PasswordHasher


class QuickPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 1000
