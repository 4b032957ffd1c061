"""The client side of Cognito's SRP-6a (what amazon-cognito-identity-js and Amplify compute),
for tests: `start()` gives SRP_A, `claim()` answers the PASSWORD_VERIFIER challenge.

The server side lives in strict_moto.py; `test_strict_moto.py` also checks this client against
an independent implementation (pycognito)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import secrets

from .strict_moto import SRP_G, SRP_K, SRP_N, _srp_h, _srp_pad


def start() -> tuple[int, str]:
    """A fresh client secret `a` and the SRP_A to send (hex)."""
    while True:
        a = int.from_bytes(secrets.token_bytes(128), "big") % SRP_N
        a_pub = pow(SRP_G, a, SRP_N)
        if a_pub % SRP_N:
            return a, f"{a_pub:x}"


def timestamp(now: datetime.datetime | None = None) -> str:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return f"{now:%a %b} {now.day} {now:%H:%M:%S} UTC {now.year}"


def claim(pool_id: str, password: str, a: int, params: dict[str, str], ts: str | None = None) -> dict[str, str]:
    """The PASSWORD_VERIFIER answers (without USERNAME/SECRET_HASH) for the challenge `params`
    (SALT, SRP_B, SECRET_BLOCK, USER_ID_FOR_SRP) and the pool id the app was built with."""
    pool_name = pool_id.split("_", 1)[1]
    user_id = params["USER_ID_FOR_SRP"]
    a_pub = pow(SRP_G, a, SRP_N)
    b_pub = int(params["SRP_B"], 16)
    salt = int(params["SALT"], 16)
    u = _srp_h(_srp_pad(a_pub), _srp_pad(b_pub))
    inner = hashlib.sha256(f"{pool_name}{user_id}:{password}".encode()).hexdigest()
    x = _srp_h(_srp_pad(salt) + bytes.fromhex(inner))
    s_val = pow((b_pub - SRP_K * pow(SRP_G, x, SRP_N)) % SRP_N, a + u * x, SRP_N)
    prk = hmac.new(_srp_pad(u), _srp_pad(s_val), hashlib.sha256).digest()
    key = hmac.new(prk, b"Caldera Derived Key\x01", hashlib.sha256).digest()[:16]
    ts = ts or timestamp()
    msg = pool_name.encode() + user_id.encode() + base64.standard_b64decode(params["SECRET_BLOCK"]) + ts.encode()
    sig = base64.standard_b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()
    return {"PASSWORD_CLAIM_SECRET_BLOCK": params["SECRET_BLOCK"], "PASSWORD_CLAIM_SIGNATURE": sig, "TIMESTAMP": ts}
