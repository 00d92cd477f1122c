"""Writes users for `tessera user import` whose password hashes come from independent reference
implementations, one user per format, as JSON Lines on standard output:

  argon2id, argon2i   argon2-cffi
  bcrypt $2b$, $2a$   the bcrypt package (pyca); $2y$ is PHP's name for the same algorithm
                      as $2b$, so its hash is bcrypt's $2b$ output renamed, as PHP exports it
  scrypt              Python's hashlib.scrypt, in the PHC form (ln, r, p; unpadded base64)
  pbkdf2_sha256$...   Django's own PBKDF2PasswordHasher
  $pbkdf2-sha256$...  hashlib.pbkdf2_hmac, in the PHC form
  Firebase scrypt     Firebase's published test vector (github.com/firebase/scrypt)

Usage: reference_hashes.py PASSWORD
The Firebase user's password is the vector's own, "user1password".
"""

import base64
import hashlib
import json
import os
import sys

import argon2
import bcrypt
from django.conf import settings

settings.configure(USE_I18N=False)
from django.contrib.auth.hashers import PBKDF2PasswordHasher  # noqa: E402

password = sys.argv[1]
secret = password.encode()


def phc_b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def user(name: str, password_hash: str, **extra) -> None:
    line = {"email": f"{name}@import.example", "name": name, "email_verified": True,
            "created_at": 1_600_000_000, "password_hash": password_hash}
    line.update(extra)
    print(json.dumps(line))


user("argon2id", argon2.PasswordHasher(time_cost=2, memory_cost=8192, parallelism=1).hash(password))
user("argon2i", argon2.low_level.hash_secret(secret, os.urandom(16), time_cost=2, memory_cost=8192,
                                             parallelism=1, hash_len=32,
                                             type=argon2.low_level.Type.I).decode())
user("bcrypt2b", bcrypt.hashpw(secret, bcrypt.gensalt(rounds=6)).decode())
user("bcrypt2a", bcrypt.hashpw(secret, bcrypt.gensalt(rounds=6, prefix=b"2a")).decode())
user("bcrypt2y", bcrypt.hashpw(secret, bcrypt.gensalt(rounds=6)).decode().replace("$2b$", "$2y$", 1))

salt = os.urandom(16)
ln, r, p = 14, 8, 1
derived = hashlib.scrypt(secret, salt=salt, n=2**ln, r=r, p=p, dklen=32, maxmem=64 * 1024 * 1024)
user("scrypt", f"$scrypt$ln={ln},r={r},p={p}${phc_b64(salt)}${phc_b64(derived)}")

user("django", PBKDF2PasswordHasher().encode(password, "seasalt2024", iterations=100_000))
salt = os.urandom(16)
derived = hashlib.pbkdf2_hmac("sha256", secret, salt, 50_000)
user("pbkdf2", f"$pbkdf2-sha256$i=50000,l=32${phc_b64(salt)}${phc_b64(derived)}")

user("firebase",
     "lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==",
     password_salt="42xEC+ixf3L2lw==")
