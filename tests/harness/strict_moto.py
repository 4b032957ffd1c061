"""A moto server whose Cognito behaves like the real one where a proxy could cheat.

Run:  python tests/harness/strict_moto.py --host 127.0.0.1 --port 5001

It serves every moto service (cognito-idp, sqs, secretsmanager, ssm, sts, ...) in one
process, like ``moto_server``, with these differences for cognito-idp (see README.md):

* secret hashes are verified on every action that takes one, for app clients with a secret;
* confirmation / reset / verification codes are random 6-digit codes, only the latest one
  for a user and purpose is accepted, and every message Cognito would send is recorded in a
  mailbox (``/_strict/mailbox``);
* actions moto 5.2.5 lacks are added (ResendConfirmationCode, DeleteUser,
  DeleteUserAttributes, RevokeToken, GetTokensFromRefreshToken,
  GetUserAttributeVerificationCode, VerifyUserAttribute, SetUserSettings,
  AdminSetUserSettings);
* CUSTOM_AUTH runs Cognito's Define / Create / Verify loop, invoking the pool's trigger
  functions for real through the invoke URLs registered with ``/_strict/lambda``;
* faults can be injected (``/_strict/faults``, ``/_strict/down``) and calls are counted
  (``/_strict/calls``); SQS SendMessage can be made to fail for one message group
  (``/_strict/sqs_faults``).

What stock moto 5.2.5 does, checked against its source (moto/cognitoidp/*.py):
* SignUp, ConfirmSignUp, ForgotPassword, ConfirmForgotPassword, InitiateAuth
  USER_PASSWORD_AUTH and the NEW_PASSWORD_REQUIRED / PASSWORD_VERIFIER challenge answers
  never look at a secret hash. USER_SRP_AUTH is checked (over USERNAME); SMS_MFA and
  SOFTWARE_TOKEN_MFA answers are checked (with the hash itself as the error message).
* REFRESH_TOKEN_AUTH is checked over the username *as typed at sign-in* (the email in an
  email pool) -- the opposite of real Cognito, which wants the internal username.
* ConfirmSignUp accepts any code; ConfirmForgotPassword accepts any code that does not start
  with "moto-confirmation-code:" (the real code leaks in an x-moto-* response header).
* ResendConfirmationCode, DeleteUser, DeleteUserAttributes, RevokeToken,
  GetTokensFromRefreshToken, GetUserAttributeVerificationCode, VerifyUserAttribute,
  SetUserSettings, AdminSetUserSettings are not implemented (HTTP 500).
* GlobalSignOut sent unsigned is routed to the us-east-1 backend and fails for pools in any
  other region.
* USER_SRP_AUTH returns USER_ID_FOR_SRP = sub; real Cognito returns the internal username.
* Email pools: users do get a generated internal username (uuid == sub) and the access
  token's ``username`` claim is that id -- no patch needed there.
* Unsigned requests (no Authorization, X-Amz-Target AWSCognitoIdentityProviderService.*)
  are routed to cognito-idp (us-east-1 backend; handlers then find the pool by client id or
  token across regions) -- works as is.
* The SRP proof (PASSWORD_CLAIM_SIGNATURE) is never verified, and this module does not add
  that either: any signature passes once the secret hash is right.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import io
import json
import secrets
import signal
import socket
import string
import sys
import threading
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qs

from moto.cognitoidp import models as cm
from moto.cognitoidp.exceptions import (
    CodeMismatchException,
    InvalidParameterException,
    NotAuthorizedError,
    ResourceNotFoundError,
    UserNotFoundError,
)
from moto.cognitoidp.models import UserStatus, cognitoidp_backends
from moto.cognitoidp.responses import CognitoIdpResponse
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult, EmptyResult

COGNITO_TARGET_PREFIX = "AWSCognitoIdentityProviderService."
JSON_11 = "application/x-amz-json-1.1"

# --------------------------------------------------------------------------------------
# shared state
# --------------------------------------------------------------------------------------

STATE_LOCK = threading.RLock()
# moto's Cognito backend is not thread-safe; werkzeug is threaded. Serialise Cognito.
COGNITO_LOCK = threading.RLock()

MAILBOX: list[dict[str, str]] = []
# (pool_id, internal username, purpose) -> latest code
CODES: dict[tuple[str, str, str], str] = {}
FAULTS: dict[str, int] = {"throttle": 0, "error500": 0, "drop": 0, "slow": 0}
FAULT_ORDER = ("throttle", "error500", "drop", "slow")
# A "slow" fault holds the Cognito call this long, then answers it normally (a client that
# gives up meanwhile has gone away while Cognito still makes the change).
SLOW_SECONDS = 1.5
DOWN = {"down": False}
CALLS: Counter[str] = Counter()
# "<Action>" -> {"throttle"|"error500"|"drop"|"slow": n}: which requests a fault was served to
# (so a test can prove the component it aims at really met the fault). Cleared with CALLS.
FAULT_HITS: dict[str, Counter[str]] = {}
# SecretId (as sent) -> GetSecretValue requests: when a process really re-read a secret.
SECRET_READS: Counter[str] = Counter()
# What Cognito learnt about callers: {"action", "username", "ip"} per request that carried
# UserContextData (newest last, bounded).
CONTEXTS: list[dict[str, Any]] = []
CONTEXTS_MAX = 1000
SECRET_READ_TARGET = "secretsmanager.GetSecretValue"
# When non-empty, only these cognito-idp actions are faulted (POST /_strict/faults "actions").
FAULT_ACTIONS: set[str] = set()
# QueueUrl -> messages sent to it (SendMessage / SendMessageBatch, JSON protocol).
SQS_SENT: Counter[str] = Counter()


def _observe_request(target: str, environ) -> None:
    """Records the parts of a request that tests assert on: secret reads and the caller IP
    Cognito was told (UserContextData.IpAddress)."""
    if target in ("AmazonSQS.SendMessage", "AmazonSQS.SendMessageBatch"):
        try:
            body = json.loads(_read_body(environ) or b"{}")
        except ValueError:
            return
        entries = body.get("Entries") if target.endswith("Batch") else [body]
        with STATE_LOCK:
            SQS_SENT[str(body.get("QueueUrl"))] += len(entries or [])
        return
    if target == SECRET_READ_TARGET:
        try:
            secret_id = json.loads(_read_body(environ) or b"{}").get("SecretId")
        except ValueError:
            return
        with STATE_LOCK:
            SECRET_READS[str(secret_id)] += 1
        return
    if not target.startswith(COGNITO_TARGET_PREFIX):
        return
    try:
        body = json.loads(_read_body(environ) or b"{}")
    except ValueError:
        return
    context = body.get("UserContextData") if isinstance(body, dict) else None
    if not isinstance(context, dict):
        return
    auth = body.get("AuthParameters") if isinstance(body.get("AuthParameters"), dict) else {}
    with STATE_LOCK:
        CONTEXTS.append({"action": target[len(COGNITO_TARGET_PREFIX):], "username": body.get("Username") or auth.get("USERNAME"),
                         "ip": context.get("IpAddress")})
        del CONTEXTS[:-CONTEXTS_MAX]


# SQS SendMessage faults: per MessageGroupId, let `skip` sends through, then refuse `count`.
SQS_SEND_FAULTS: dict[str, dict[str, int]] = {}
SQS_SEND_FAILED: Counter[str] = Counter()
SQS_SEND_TARGET = "AmazonSQS.SendMessage"

PURPOSE_SIGN_UP = "SIGN_UP"
PURPOSE_FORGOT = "FORGOT_PASSWORD"


def _verify_purpose(attribute: str) -> str:
    return f"VERIFY_ATTRIBUTE:{attribute}"


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------


class CognitoError(JsonRESTError):
    def __init__(self, error_type: str, message: str, code: int = 400):
        super().__init__(error_type, message)
        self.code = code


def _missing_hash(client_id: str) -> CognitoError:
    return CognitoError(
        "NotAuthorizedException",
        f"Client {client_id} is configured with secret but SECRET_HASH was not received",
    )


def _bad_hash(client_id: str) -> CognitoError:
    return CognitoError(
        "NotAuthorizedException", f"Unable to verify secret hash for client {client_id}"
    )


def _code_mismatch() -> CodeMismatchException:
    return CodeMismatchException("Invalid verification code provided, please try again.")


# --------------------------------------------------------------------------------------
# lookups across every account / region (unsigned requests land on us-east-1)
# --------------------------------------------------------------------------------------


def _backends():
    for account_backends in list(cognitoidp_backends.values()):
        for region, backend in list(account_backends.items()):
            if region != "global":
                yield backend


def _pools():
    for backend in _backends():
        for pool in list(backend.user_pools.values()):
            yield backend, pool


def _by_client(client_id: str | None):
    """-> (backend, pool, client) or ResourceNotFoundException."""
    if client_id:
        for backend, pool in _pools():
            client = pool.clients.get(client_id)
            if client is not None:
                return backend, pool, client
    raise ResourceNotFoundError(f"User pool client {client_id} does not exist.")


def _by_access_token(token: str | None):
    """-> (backend, pool, user) or NotAuthorizedException."""
    if token:
        for backend, pool in _pools():
            entry = pool.access_tokens.get(token)
            if entry is not None:
                user = pool._get_user(entry[1])
                if user is None:
                    break
                if not user.enabled:
                    raise NotAuthorizedError("User is disabled.")
                return backend, pool, user
    raise NotAuthorizedError("Invalid Access Token")


def _internal(pool, username: str | None) -> str | None:
    """The pool's internal username for whatever the caller typed."""
    if username is None:
        return None
    user = pool._get_user(username)
    return user.username if user is not None else username


def _user_or_404(pool, username: str | None):
    user = pool._get_user(username) if username else None
    if user is None:
        raise UserNotFoundError("Username/client id combination not found.")
    return user


# --------------------------------------------------------------------------------------
# secret hash
# --------------------------------------------------------------------------------------


def secret_hash(client_secret: str, username: str, client_id: str) -> str:
    digest = hmac.new(
        client_secret.encode("utf-8"), (username + client_id).encode("utf-8"), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def _require_hash(client, username: str | None, provided: Any) -> None:
    if not client.generate_secret:
        return
    if not provided:
        raise _missing_hash(client.id)
    if username is None or not isinstance(provided, str):
        raise _bad_hash(client.id)
    expected = secret_hash(str(client.secret), username, client.id)
    if not hmac.compare_digest(expected.encode(), provided.encode()):
        raise _bad_hash(client.id)


def _require_client_secret(client, provided: Any) -> None:
    if not client.generate_secret:
        return
    if not provided:
        raise _missing_hash(client.id)
    if not isinstance(provided, str) or not hmac.compare_digest(
        provided.encode(), str(client.secret).encode()
    ):
        raise _bad_hash(client.id)


# --------------------------------------------------------------------------------------
# codes and mailbox
# --------------------------------------------------------------------------------------


def _new_code() -> str:
    return f"{secrets.randbelow(900_000) + 100_000}"


def _destination(user, attribute: str | None = None) -> tuple[str, str, str]:
    """-> (address, medium, attribute name)"""
    attrs = user.attribute_lookup
    if attribute is None:
        attribute = "email" if attrs.get("email") else "phone_number"
    medium = "SMS" if attribute == "phone_number" else "EMAIL"
    return attrs.get(attribute, ""), medium, attribute


def _mask(address: str, medium: str) -> str:
    if medium == "EMAIL" and "@" in address:
        local, domain = address.split("@", 1)
        return f"{local[:1]}***@{domain[:1]}***"
    if address:
        return "+*******" + address[-4:]
    return ""


def _delivery(user, attribute: str | None = None) -> dict[str, str] | None:
    address, medium, attribute = _destination(user, attribute)
    if not address:
        return None
    return {"Destination": _mask(address, medium), "DeliveryMedium": medium, "AttributeName": attribute}


def _send(pool, user, kind: str, code: str, purpose: str | None, attribute: str | None = None) -> None:
    """Remember `code` as the only valid one for `purpose` and record the message."""
    address, _, _ = _destination(user, attribute)
    with STATE_LOCK:
        if purpose is not None:
            CODES[(pool.id, user.username, purpose)] = code
        MAILBOX.append(
            {
                "pool_id": pool.id,
                "username": user.username,
                "destination": address,
                "kind": kind,
                "code": code,
            }
        )


def _consume_code(pool, user, purpose: str, given: Any) -> None:
    key = (pool.id, user.username, purpose)
    with STATE_LOCK:
        expected = CODES.get(key)
        if expected is None or not isinstance(given, str) or not hmac.compare_digest(
            expected.encode(), given.encode()
        ):
            raise _code_mismatch()
        del CODES[key]


def _forget_user(pool, username: str) -> None:
    with STATE_LOCK:
        for key in [k for k in CODES if k[0] == pool.id and k[1] == username]:
            del CODES[key]


def _check_attribute_names(pool, attributes: list[dict[str, str]] | None) -> None:
    """Real Cognito rejects custom attributes the pool does not define."""
    for attr in attributes or []:
        name = attr.get("Name", "")
        if ("custom:" in name) and name not in pool.schema_attributes:
            raise InvalidParameterException(
                f"Attributes did not conform to the schema: Type for attribute {{{name}}} could not be determined"
            )


def _auto_verified(pool) -> list[str]:
    return list(pool.extended_config.get("AutoVerifiedAttributes") or [])


def _generate_temporary_password() -> str:
    alphabet = string.ascii_letters + string.digits
    core = "".join(secrets.choice(alphabet) for _ in range(10))
    return f"Tmp{core}9!a"


def _jwt_claims(token: str) -> dict[str, Any]:
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        return json.loads(base64.urlsafe_b64decode(payload))
    except Exception:  # noqa: BLE001 - not a JWT
        return {}


# --------------------------------------------------------------------------------------
# model patches: tokens always carry the internal username
# --------------------------------------------------------------------------------------

Pool = cm.CognitoIdpUserPool
_orig_create_refresh_token = Pool.create_refresh_token
_orig_create_access_token = Pool.create_access_token
_orig_create_id_token = Pool.create_id_token
_orig_create_jwt = Pool.create_jwt
_orig_sign_out = Pool.sign_out
_orig_user_to_json = cm.CognitoIdpUser.to_json


def _create_refresh_token(self, client_id, username):
    return _orig_create_refresh_token(self, client_id, _internal(self, username))


def _create_access_token(self, client_id, username, origin_jti):
    return _orig_create_access_token(self, client_id, _internal(self, username), origin_jti)


def _create_id_token(self, client_id, username, origin_jti):
    return _orig_create_id_token(self, client_id, _internal(self, username), origin_jti)


def _create_jwt(self, client_id, username, token_use, expires_in=60 * 60, extra_data=None):
    # moto puts the username it was given into the id token's `email` claim of email pools;
    # with internal usernames that would be the uuid, so pass the real address instead.
    if token_use == "id" and "email" in (self.extended_config.get("UsernameAttributes") or []):
        user = self._get_user(username)
        if user is not None and user.attribute_lookup.get("email"):
            extra_data = dict(extra_data or {})
            extra_data["email"] = user.attribute_lookup["email"]
    return _orig_create_jwt(self, client_id, username, token_use, expires_in, extra_data)


def _sign_out(self, username):
    return _orig_sign_out(self, _internal(self, username))


def _user_to_json(self, *args, **kwargs):
    out = _orig_user_to_json(self, *args, **kwargs)
    if "MFAOptions" in out and getattr(self, "strict_mfa_options", None):
        out["MFAOptions"] = self.strict_mfa_options
    return out


_orig_update_extended_config = Pool.update_extended_config
# Settings UpdateUserPool cannot change (moto 5.2.5 drops them, turning an email pool into a
# username pool); everything else is reset to what the request gives, like Cognito.
_FIXED_POOL_SETTINGS = ("UsernameAttributes", "AliasAttributes", "UsernameConfiguration")


def _update_extended_config(self, extended_config):
    fixed = {k: self.extended_config[k] for k in _FIXED_POOL_SETTINGS
             if k in getattr(self, "extended_config", {})}
    _orig_update_extended_config(self, extended_config)
    self.extended_config.update(fixed)


Pool.update_extended_config = _update_extended_config
Pool.create_refresh_token = _create_refresh_token
Pool.create_access_token = _create_access_token
Pool.create_id_token = _create_id_token
Pool.create_jwt = _create_jwt
Pool.sign_out = _sign_out
cm.CognitoIdpUser.to_json = _user_to_json


# --------------------------------------------------------------------------------------
# response handler patches
# --------------------------------------------------------------------------------------

R = CognitoIdpResponse
_orig = {
    name: getattr(R, name)
    for name in (
        "initiate_auth",
        "admin_initiate_auth",
        "respond_to_auth_challenge",
        "admin_respond_to_auth_challenge",
        "admin_reset_user_password",
        "update_user_attributes",
        "admin_update_user_attributes",
    )
}


def handler(fn):
    setattr(R, fn.__name__, fn)
    return fn


_FLOW_NEEDS = {
    "USER_PASSWORD_AUTH": ("ALLOW_USER_PASSWORD_AUTH", "USER_PASSWORD_AUTH"),
    "USER_SRP_AUTH": ("ALLOW_USER_SRP_AUTH",),
    "REFRESH_TOKEN_AUTH": ("ALLOW_REFRESH_TOKEN_AUTH",),
    "REFRESH_TOKEN": ("ALLOW_REFRESH_TOKEN_AUTH",),
    "CUSTOM_AUTH": ("ALLOW_CUSTOM_AUTH", "CUSTOM_AUTH_FLOW_ONLY"),
    "ADMIN_USER_PASSWORD_AUTH": ("ALLOW_ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH"),
    "ADMIN_NO_SRP_AUTH": ("ALLOW_ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH"),
    "USER_AUTH": ("ALLOW_USER_AUTH",),
}


def _check_flow_enabled(client, flow: str) -> None:
    explicit = client.extended_config.get("ExplicitAuthFlows")
    if not explicit or flow not in _FLOW_NEEDS:
        return
    if not any(name in explicit for name in _FLOW_NEEDS[flow]):
        raise InvalidParameterException(f"{flow} flow not enabled for this client")


def _refresh_token_user(pool, client, token: Any):
    """-> internal username of the refresh token's user, NotAuthorized otherwise."""
    if not isinstance(token, str) or not token:
        raise InvalidParameterException("Missing required parameter REFRESH_TOKEN")
    if token not in pool.refresh_tokens:
        raise NotAuthorizedError("Invalid Refresh Token")
    entry = pool.refresh_tokens[token]
    if entry is None:
        raise NotAuthorizedError("Refresh Token has been revoked")
    token_client, username, _ = entry
    if token_client != client.id:
        raise NotAuthorizedError("Invalid Refresh Token")
    user = pool._get_user(username) if username else None
    if user is None:
        raise NotAuthorizedError("Refresh Token has been revoked")
    if not user.enabled:
        raise NotAuthorizedError("User is disabled.")
    return user.username


def _check_initiate(self, admin: bool) -> dict[str, Any]:
    client_id = self._get_param("ClientId")
    flow = self._get_param("AuthFlow")
    params = self._get_param("AuthParameters") or {}
    backend, pool, client = _by_client(client_id)
    if admin and self._get_param("UserPoolId") != pool.id:
        raise ResourceNotFoundError(f"User pool client {client_id} does not exist.")
    _check_flow_enabled(client, flow)
    if flow in ("REFRESH_TOKEN_AUTH", "REFRESH_TOKEN"):
        internal = _refresh_token_user(pool, client, params.get("REFRESH_TOKEN"))
        _require_hash(client, internal, params.get("SECRET_HASH"))
    elif flow in (
        "USER_PASSWORD_AUTH",
        "USER_SRP_AUTH",
        "CUSTOM_AUTH",
        "ADMIN_USER_PASSWORD_AUTH",
        "ADMIN_NO_SRP_AUTH",
        "USER_AUTH",
    ):
        _require_hash(client, params.get("USERNAME"), params.get("SECRET_HASH"))
    return {"flow": flow, "pool": pool, "client": client, "backend": backend}


# -- SRP (Cognito's SRP-6a variant), so that a wrong password or pool name fails for real ------

SRP_N = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C"
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
    16,
)
SRP_G = 2
# SECRET_BLOCK -> the server's side of one handshake (used once).
SRP_STATE: dict[str, dict[str, Any]] = {}


def _srp_pad(value: int) -> bytes:
    """Cognito's padHex: the big-endian bytes, with a leading zero byte when the top bit is set."""
    h = f"{value:x}"
    if len(h) % 2:
        h = "0" + h
    if h[0] in "89abcdef":
        h = "00" + h
    return bytes.fromhex(h)


def _srp_h(*parts: bytes) -> int:
    return int(hashlib.sha256(b"".join(parts)).hexdigest(), 16)


SRP_K = _srp_h(_srp_pad(SRP_N), _srp_pad(SRP_G))


def _srp_verifier(pool_name: str, user_id: str, password: str, salt: int) -> int:
    inner = hashlib.sha256(f"{pool_name}{user_id}:{password}".encode()).hexdigest()
    x = _srp_h(_srp_pad(salt) + bytes.fromhex(inner))
    return pow(SRP_G, x, SRP_N)


def _srp_start(pool, user, srp_a_hex: Any) -> tuple[int, int, dict[str, Any]]:
    """Server values for a USER_SRP_AUTH: (salt, B). Raises for a bad SRP_A."""
    try:
        a_pub = int(str(srp_a_hex), 16)
    except ValueError:
        raise InvalidParameterException("SRP_A is not a hex number") from None
    if a_pub % SRP_N == 0:
        raise InvalidParameterException("SRP_A must not be 0 mod N")
    salt = int.from_bytes(secrets.token_bytes(16), "big")
    v = _srp_verifier(pool.id.split("_", 1)[1], user.username, user.password or "", salt)
    b = int.from_bytes(secrets.token_bytes(128), "big") % SRP_N
    b_pub = (SRP_K * v + pow(SRP_G, b, SRP_N)) % SRP_N
    return salt, b_pub, {"a_pub": a_pub, "b": b, "b_pub": b_pub, "v": v, "user_id": user.username, "pool_name": pool.id.split("_", 1)[1]}


def _srp_check(state: dict[str, Any], secret_block: str, timestamp: Any, signature: Any) -> bool:
    u = _srp_h(_srp_pad(state["a_pub"]), _srp_pad(state["b_pub"]))
    if u == 0:
        return False
    s_val = pow(state["a_pub"] * pow(state["v"], u, SRP_N), state["b"], SRP_N)
    prk = hmac.new(_srp_pad(u), _srp_pad(s_val), hashlib.sha256).digest()
    key = hmac.new(prk, b"Caldera Derived Key\x01", hashlib.sha256).digest()[:16]
    try:
        block = base64.b64decode(secret_block, validate=True)
    except ValueError:
        return False
    msg = state["pool_name"].encode() + state["user_id"].encode() + block + str(timestamp).encode()
    expected = base64.standard_b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()
    return isinstance(signature, str) and hmac.compare_digest(expected, signature)


def _fix_srp_challenge(result: Any, pool, srp_a: Any = None) -> Any:
    if isinstance(result, ActionResult) and isinstance(result.result, dict):
        body = result.result
        if body.get("ChallengeName") == "PASSWORD_VERIFIER":
            params = body.get("ChallengeParameters") or {}
            user = pool._get_user(params.get("USERNAME", ""))
            if user is not None:
                # Real Cognito: USER_ID_FOR_SRP is the internal username (moto: the sub).
                params["USER_ID_FOR_SRP"] = user.username
                # Real SRP values, so that the proof is checked against the password.
                salt, b_pub, state = _srp_start(pool, user, srp_a)
                params["SALT"] = f"{salt:x}"
                params["SRP_B"] = f"{b_pub:x}"
                # Real Cognito's SECRET_BLOCK is opaque *standard base64*; moto's is a uuid, which
                # Python's b64decode reads without its dashes but Node's Buffer reads as
                # base64url: the real JS clients would sign other bytes than a Python server checks.
                moto_session = params["SECRET_BLOCK"]
                block = base64.standard_b64encode(secrets.token_bytes(96)).decode()
                for backend in _backends():
                    if moto_session in backend.sessions:
                        backend.sessions[block] = backend.sessions[moto_session]
                params["SECRET_BLOCK"] = block
                with STATE_LOCK:
                    SRP_STATE[block] = state
    return result


# -- CUSTOM_AUTH: Cognito's Define / Create / Verify loop, with the triggers invoked for real --------
#
# A trigger is an ARN in the pool's LambdaConfig; `POST /_strict/lambda {"arn", "url"}` maps it to
# an invoke URL (a lambda host, see lambda_host.py): the event is POSTed there as JSON and the
# answer is the function's output, or an error with header `X-Amz-Function-Error` (like the Lambda
# Invoke API).

# function ARN -> {"url": invoke URL, "timeout": seconds}
LAMBDAS: dict[str, dict[str, Any]] = {}
# Session string -> one step of a custom auth loop (single use).
CUSTOM_SESSIONS: dict[str, dict[str, Any]] = {}
CUSTOM_SESSION_SECONDS = 180  # Cognito's default AuthSessionValidity (3 minutes)
LAMBDA_TIMEOUT_SECONDS = 5.0  # Cognito waits 5 s for a trigger
TRIGGERS = ("DefineAuthChallenge", "CreateAuthChallenge", "VerifyAuthChallengeResponse")


def _lambda_config(pool) -> dict[str, str]:
    return dict(pool.extended_config.get("LambdaConfig") or {})


def _custom_auth_triggers(pool) -> dict[str, str]:
    config = _lambda_config(pool)
    if not all(config.get(t) for t in TRIGGERS):
        raise InvalidParameterException("Custom auth lambda trigger is not configured for the user pool.")
    return {t: config[t] for t in TRIGGERS}


def _user_attributes_for_trigger(pool, user) -> dict[str, str]:
    """userAttributes as Cognito sends them to triggers: every attribute, `sub`,
    `cognito:user_status`, and the alias markers of email/phone pools."""
    attrs = {k: v for k, v in user.attribute_lookup.items() if v is not None}
    attrs["sub"] = user.id
    attrs["cognito:user_status"] = user.status.value if hasattr(user.status, "value") else str(user.status)
    username_attributes = pool.extended_config.get("UsernameAttributes") or []
    if "email" in username_attributes and attrs.get("email_verified") == "true":
        attrs["cognito:email_alias"] = attrs.get("email", "")
    if "phone_number" in username_attributes and attrs.get("phone_number_verified") == "true":
        attrs["cognito:phone_number_alias"] = attrs.get("phone_number", "")
    return attrs


def _invoke_trigger(arn: str, trigger: str, event: dict[str, Any]) -> dict[str, Any]:
    """Invokes one trigger; -> its `response` object. Errors are Cognito's: the function failed ->
    UserLambdaValidationException; no answer in time / cannot reach it -> UnexpectedLambdaException;
    output that is not the event -> InvalidLambdaResponseException."""
    import urllib.error
    import urllib.request

    with STATE_LOCK:
        target = LAMBDAS.get(arn)
    if target is None:
        raise CognitoError(
            "UnexpectedLambdaException",
            f"{trigger} invocation failed due to error AccessDeniedException.",
        )
    request = urllib.request.Request(
        target["url"], data=json.dumps(event).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=target["timeout"]) as r:
            function_error = r.headers.get("X-Amz-Function-Error")
            raw = r.read()
    except urllib.error.HTTPError as e:
        raise CognitoError(
            "UnexpectedLambdaException", f"{trigger} invocation failed due to error {e.code} from Lambda."
        ) from None
    except (OSError, TimeoutError):  # timeouts, refused connections
        raise CognitoError(
            "UnexpectedLambdaException",
            f"{trigger} invocation failed due to error Socket timeout while invoking Lambda function.",
        ) from None
    try:
        output = json.loads(raw or b"null")
    except ValueError:
        output = None
    if function_error:
        message = output.get("errorMessage") if isinstance(output, dict) else None
        raise CognitoError("UserLambdaValidationException", f"{trigger} failed with error {message}.")
    if not isinstance(output, dict) or not isinstance(output.get("response"), dict):
        raise CognitoError("InvalidLambdaResponseException", "Invalid lambda function output : Invalid JSON")
    return output["response"]


def _trigger_event(pool, user, client_id: str, source: str, request: dict[str, Any], response: dict[str, Any]):
    return {
        "version": "1",
        "region": pool.id.split("_", 1)[0],
        "userPoolId": pool.id,
        "userName": user.username,
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": client_id},
        "triggerSource": source,
        "request": request,
        "response": response,
    }


def _define(state: dict[str, Any], pool, user) -> dict[str, Any]:
    request = {
        "userAttributes": _user_attributes_for_trigger(pool, user),
        "session": [dict(item) for item in state["history"]],
        "clientMetadata": dict(state["client_metadata"]),
        "userNotFound": False,
    }
    event = _trigger_event(pool, user, state["client_id"], "DefineAuthChallenge_Authentication", request,
                           {"challengeName": None, "issueTokens": None, "failAuthentication": None})
    return _invoke_trigger(state["triggers"]["DefineAuthChallenge"], "DefineAuthChallenge", event)


def _create(state: dict[str, Any], pool, user, challenge: str) -> dict[str, Any]:
    request = {
        "userAttributes": _user_attributes_for_trigger(pool, user),
        "challengeName": challenge,
        "session": [dict(item) for item in state["history"]],
        "clientMetadata": dict(state["client_metadata"]),
        "userNotFound": False,
    }
    event = _trigger_event(pool, user, state["client_id"], "CreateAuthChallenge_Authentication", request,
                           {"publicChallengeParameters": None, "privateChallengeParameters": None,
                            "challengeMetadata": None})
    return _invoke_trigger(state["triggers"]["CreateAuthChallenge"], "CreateAuthChallenge", event)


def _verify(state: dict[str, Any], pool, user, answer: str, client_metadata: dict[str, str]) -> bool:
    request = {
        "userAttributes": _user_attributes_for_trigger(pool, user),
        "privateChallengeParameters": dict(state["private"]),
        "challengeAnswer": answer,
        "clientMetadata": dict(client_metadata),
        "userNotFound": False,
    }
    event = _trigger_event(pool, user, state["client_id"], "VerifyAuthChallengeResponse_Authentication",
                           request, {"answerCorrect": None})
    return _invoke_trigger(state["triggers"]["VerifyAuthChallengeResponse"], "VerifyAuthChallengeResponse",
                           event).get("answerCorrect") is True


def _string_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if v is not None}


def _custom_next(backend, pool, client, user, state: dict[str, Any]) -> ActionResult:
    """Define, then tokens / failure / the next challenge (Create, a new single-use Session)."""
    decision = _define(state, pool, user)
    if decision.get("failAuthentication") is True:
        raise NotAuthorizedError("Incorrect username or password.")
    if decision.get("issueTokens") is True:
        return ActionResult(backend._log_user_in(pool, client, user.username))
    challenge = decision.get("challengeName")
    if challenge != "CUSTOM_CHALLENGE":
        if challenge in (None, ""):
            raise CognitoError("InvalidLambdaResponseException", "Unrecognizable lambda output")
        raise InvalidParameterException(f"strict_moto: challenge {challenge} from DefineAuthChallenge is not emulated")
    created = _create(state, pool, user, challenge)
    session = base64.b64encode(secrets.token_bytes(48)).decode()
    step = {
        **state,
        "private": _string_map(created.get("privateChallengeParameters")),
        "metadata": created.get("challengeMetadata") if isinstance(created.get("challengeMetadata"), str) else None,
        "expires": time.monotonic() + CUSTOM_SESSION_SECONDS,
    }
    with STATE_LOCK:
        CUSTOM_SESSIONS[session] = step
    public = _string_map(created.get("publicChallengeParameters"))
    public["USERNAME"] = user.username
    return ActionResult({"ChallengeName": "CUSTOM_CHALLENGE", "Session": session, "ChallengeParameters": public})


def _custom_auth_initiate(self, admin: bool) -> ActionResult:
    client_id = self._get_param("ClientId")
    params = self._get_param("AuthParameters") or {}
    backend, pool, client = _by_client(client_id)
    triggers = _custom_auth_triggers(pool)
    if params.get("SRP_A"):
        raise InvalidParameterException("strict_moto: CUSTOM_AUTH with SRP_A is not emulated")
    typed = params.get("USERNAME")
    if not isinstance(typed, str) or not typed:
        raise InvalidParameterException("Missing required parameter USERNAME")
    user = pool._get_user(typed)
    if user is None:
        if client.extended_config.get("PreventUserExistenceErrors") == "ENABLED":
            raise NotAuthorizedError("Incorrect username or password.")
        raise UserNotFoundError("User does not exist.")
    if not user.enabled:
        raise NotAuthorizedError("User is disabled.")
    if user.status == UserStatus.UNCONFIRMED:
        raise CognitoError("UserNotConfirmedException", "User is not confirmed.")
    state = {
        "pool_id": pool.id,
        "client_id": client.id,
        "username": user.username,
        "triggers": triggers,
        "history": [],
        "client_metadata": _string_map(self._get_param("ClientMetadata")),
        "admin": admin,
    }
    return _custom_next(backend, pool, client, user, state)


def _custom_auth_respond(self, admin: bool) -> ActionResult:
    client_id = self._get_param("ClientId")
    answers = self._get_param("ChallengeResponses") or {}
    backend, pool, client = _by_client(client_id)
    if admin and self._get_param("UserPoolId") != pool.id:
        raise ResourceNotFoundError(f"User pool client {client_id} does not exist.")
    _require_hash(client, answers.get("USERNAME"), answers.get("SECRET_HASH"))
    session = self._get_param("Session")
    with STATE_LOCK:
        state = CUSTOM_SESSIONS.pop(session, None) if isinstance(session, str) else None
    if state is None or state["client_id"] != client.id or state["admin"] != admin:
        raise NotAuthorizedError("Invalid session for the user.")
    if time.monotonic() > state["expires"]:
        raise NotAuthorizedError("Invalid session for the user, session is expired.")
    user = pool._get_user(answers.get("USERNAME")) if isinstance(answers.get("USERNAME"), str) else None
    if user is None or user.username != state["username"]:
        raise NotAuthorizedError("Invalid session for the user.")
    if not user.enabled:
        raise NotAuthorizedError("User is disabled.")
    answer = answers.get("ANSWER")
    if not isinstance(answer, str):
        raise InvalidParameterException("ANSWER is required for CUSTOM_CHALLENGE")
    correct = _verify(state, pool, user, answer, _string_map(self._get_param("ClientMetadata")))
    history = list(state["history"]) + [
        {"challengeName": "CUSTOM_CHALLENGE", "challengeResult": correct, "challengeMetadata": state["metadata"]}
    ]
    next_state = {k: v for k, v in state.items() if k not in ("private", "metadata", "expires")}
    next_state["history"] = history
    next_state["client_metadata"] = _string_map(self._get_param("ClientMetadata")) or state["client_metadata"]
    return _custom_next(backend, pool, client, user, next_state)


@handler
def initiate_auth(self):
    with COGNITO_LOCK:
        ctx = _check_initiate(self, admin=False)
        params = self._get_param("AuthParameters") or {}
        if ctx["flow"] == "CUSTOM_AUTH":
            return _custom_auth_initiate(self, admin=False)
        if ctx["flow"] == "USER_AUTH":
            result = _user_auth(ctx["backend"], ctx["pool"], ctx["client"], params)
        else:
            result = _fix_srp_challenge(_orig["initiate_auth"](self), ctx["pool"], params.get("SRP_A"))
        return _remember_challenge(result, ctx["pool"], ctx["client"], params.get("USERNAME"))


@handler
def admin_initiate_auth(self):
    with COGNITO_LOCK:
        ctx = _check_initiate(self, admin=True)
        if ctx["flow"] == "CUSTOM_AUTH":
            return _custom_auth_initiate(self, admin=True)
        result = _orig["admin_initiate_auth"](self)
        return _remember_challenge(result, ctx["pool"], ctx["client"], (self._get_param("AuthParameters") or {}).get("USERNAME"))


# -- USER_AUTH (choice-based sign-in): PASSWORD and PASSWORD_SRP ------------------------------

USER_AUTH_CHOICES = ["PASSWORD", "PASSWORD_SRP"]


def _user_auth(backend, pool, client, params: dict[str, Any], answer: str | None = None) -> ActionResult:
    """InitiateAuth USER_AUTH (after the hash check): PREFERRED_CHALLENGE PASSWORD signs in
    with PASSWORD, PASSWORD_SRP answers a real PASSWORD_VERIFIER challenge for SRP_A, none
    offers SELECT_CHALLENGE. `answer` is a SELECT_CHALLENGE answer (same choices)."""
    username = params.get("USERNAME")
    if not isinstance(username, str) or not username:
        raise InvalidParameterException("Missing required parameter USERNAME")
    user = pool._get_user(username)
    if user is None:
        raise UserNotFoundError("User does not exist.")
    choice = answer if answer is not None else params.get("PREFERRED_CHALLENGE")
    if choice == "PASSWORD":
        if not isinstance(params.get("PASSWORD"), str):
            raise InvalidParameterException("Missing required parameter PASSWORD")
        return ActionResult(backend.initiate_auth(client.id, "USER_PASSWORD_AUTH", {"USERNAME": username, "PASSWORD": params["PASSWORD"]}))
    if choice == "PASSWORD_SRP":
        if not params.get("SRP_A"):
            raise InvalidParameterException("Missing required parameter SRP_A")
        result = backend.initiate_auth(client.id, "USER_SRP_AUTH", {
            "USERNAME": username, "SRP_A": params["SRP_A"],
            "SECRET_HASH": secret_hash(client.secret, username, client.id) if client.generate_secret else None})
        return _fix_srp_challenge(ActionResult(result), pool, params["SRP_A"])
    if choice in (None, "") and answer is None:
        if not user.enabled:
            raise NotAuthorizedError("User is disabled.")
        session = secrets.token_urlsafe(48)
        backend.sessions[session] = (username, pool)
        return ActionResult({"ChallengeName": "SELECT_CHALLENGE", "Session": session, "ChallengeParameters": {},
                             "AvailableChallenges": list(USER_AUTH_CHOICES)})
    raise InvalidParameterException(f"The challenge {choice} is not available for this user")


# -- challenge sessions: an answer is bound to the session issued for its user, client and
# challenge, and is good for one answer ------------------------------------------------------

# Session -> {"pool", "client", "user" (internal username), "challenge"}
ISSUED_SESSIONS: dict[str, dict[str, str]] = {}
INVALID_SESSION = "Invalid session for the user."


def _remember_challenge(result: Any, pool, client, typed_username: Any) -> Any:
    """Records the session of a challenge the emulator answers (any flow, any step)."""
    body = result.result if isinstance(result, ActionResult) and isinstance(result.result, dict) else None
    if body and body.get("ChallengeName") and body.get("Session"):
        params = body.get("ChallengeParameters") or {}
        user = pool._get_user(params.get("USER_ID_FOR_SRP") or params.get("USERNAME") or typed_username or "")
        with STATE_LOCK:
            ISSUED_SESSIONS[body["Session"]] = {"pool": pool.id, "client": client.id,
                                                "user": user.username if user is not None else str(typed_username),
                                                "challenge": body["ChallengeName"]}
    return result


def _bind_session(pool, client, name: Any, session: Any, answers: dict[str, Any]) -> None:
    """A RespondToAuthChallenge must carry the session issued for this pool, client, challenge
    and user, once. A PASSWORD_VERIFIER answer is bound by its single-use SECRET_BLOCK; a
    Session sent with it is checked all the same."""
    if name == "PASSWORD_VERIFIER" and not session:
        return
    with STATE_LOCK:
        issued = ISSUED_SESSIONS.pop(session, None) if isinstance(session, str) else None
    said = answers.get("USERNAME")
    if (
        issued is None
        or (issued["pool"], issued["client"], issued["challenge"]) != (pool.id, client.id, name)
        or (said is not None and _internal(pool, said) != issued["user"])
    ):
        raise NotAuthorizedError(INVALID_SESSION)


def _check_challenge(self) -> tuple[Any, Any, Any]:
    """Hash, session and SRP proof checks of a (Admin)RespondToAuthChallenge: (backend, pool, client)."""
    client_id = self._get_param("ClientId")
    name = self._get_param("ChallengeName")
    answers = self._get_param("ChallengeResponses") or {}
    backend, pool, client = _by_client(client_id)
    if client.generate_secret:
        _check_challenge_hash(backend, client, name, answers)
    _bind_session(pool, client, name, self._get_param("Session"), answers)
    if name == "PASSWORD_VERIFIER":
        # The proof itself (after the hash): one use per handshake; a wrong password, user or
        # pool name fails like Cognito's.
        block = answers.get("PASSWORD_CLAIM_SECRET_BLOCK")
        with STATE_LOCK:
            state = SRP_STATE.pop(block, None) if isinstance(block, str) else None
        if state is None or not _srp_check(state, block, answers.get("TIMESTAMP"), answers.get("PASSWORD_CLAIM_SIGNATURE")):
            raise NotAuthorizedError("Incorrect username or password.")
    return backend, pool, client


def _check_challenge_hash(backend, client, name: str, answers: dict[str, Any]) -> None:
    if name == "PASSWORD_VERIFIER":
        # The hash is over USER_ID_FOR_SRP (the internal username), whatever was typed.
        session = answers.get("PASSWORD_CLAIM_SECRET_BLOCK")
        entry = backend.sessions.get(session) if isinstance(session, str) else None
        if entry is None:
            raise NotAuthorizedError("Invalid session for the user.")
        typed, session_pool = entry
        _require_hash(client, _internal(session_pool, typed), answers.get("SECRET_HASH"))
        said = answers.get("USERNAME")
        if said is not None and _internal(session_pool, said) != _internal(session_pool, typed):
            raise NotAuthorizedError("Incorrect username or password.")
    else:
        _require_hash(client, answers.get("USERNAME"), answers.get("SECRET_HASH"))


def _respond(self, orig: str):
    backend, pool, client = _check_challenge(self)
    answers = self._get_param("ChallengeResponses") or {}
    if self._get_param("ChallengeName") == "SELECT_CHALLENGE":
        backend.sessions.pop(self._get_param("Session"), None)
        result = _user_auth(backend, pool, client, answers, answer=str(answers.get("ANSWER", "")))
    else:
        result = _orig[orig](self)
    return _remember_challenge(result, pool, client, answers.get("USERNAME"))


@handler
def respond_to_auth_challenge(self):
    with COGNITO_LOCK:
        if self._get_param("ChallengeName") == "CUSTOM_CHALLENGE":
            return _custom_auth_respond(self, admin=False)
        return _respond(self, "respond_to_auth_challenge")


@handler
def admin_respond_to_auth_challenge(self):
    with COGNITO_LOCK:
        if self._get_param("ChallengeName") == "CUSTOM_CHALLENGE":
            return _custom_auth_respond(self, admin=True)
        return _respond(self, "admin_respond_to_auth_challenge")


def _hashed_request(resp):
    """ClientId + Username + top-level SecretHash, checked: (backend, pool, client, username)."""
    username = resp._get_param("Username")
    backend, pool, client = _by_client(resp._get_param("ClientId"))
    _require_hash(client, username, resp._get_param("SecretHash"))
    return backend, pool, client, username


@handler
def sign_up(self):
    with COGNITO_LOCK:
        _, pool, client, username = _hashed_request(self)
        attributes = self._get_param("UserAttributes", [])
        _check_attribute_names(pool, attributes)
        backend = cm.RegionAgnosticBackend(self.current_account, self.region)
        user, _ = backend.sign_up(
            client_id=client.id,
            username=username,
            password=self._get_param("Password"),
            attributes=attributes,
        )
        response: dict[str, Any] = {
            "UserConfirmed": user.status == UserStatus.CONFIRMED,
            "UserSub": user.id,
        }
        if user.status != UserStatus.CONFIRMED:
            _send(pool, user, "SIGN_UP", _new_code(), PURPOSE_SIGN_UP)
            details = _delivery(user)
            if details:
                response["CodeDeliveryDetails"] = details
        return ActionResult(response)


@handler
def confirm_sign_up(self):
    with COGNITO_LOCK:
        _, pool, client, username = _hashed_request(self)
        user = _user_or_404(pool, username)
        if user.status == UserStatus.CONFIRMED:
            raise NotAuthorizedError("User cannot be confirmed. Current status is CONFIRMED")
        _consume_code(pool, user, PURPOSE_SIGN_UP, self._get_param("ConfirmationCode"))
        user.status = UserStatus.CONFIRMED
        # Confirming verifies the attribute the sign-up code went to (the one SignUp named in
        # CodeDeliveryDetails): in Cognito codes go only to auto-verified attributes, and this
        # emulator sends one whenever the user has an address.
        details = _delivery(user)
        if details:
            user.update_attributes([{"Name": f"{details['AttributeName']}_verified", "Value": "true"}])
        return EmptyResult()


@handler
def resend_confirmation_code(self):
    with COGNITO_LOCK:
        _, pool, client, username = _hashed_request(self)
        user = _user_or_404(pool, username)
        if user.status == UserStatus.CONFIRMED:
            raise InvalidParameterException("User is already confirmed.")
        _send(pool, user, "RESEND", _new_code(), PURPOSE_SIGN_UP)
        details = _delivery(user)
        return ActionResult({"CodeDeliveryDetails": details} if details else {})


@handler
def forgot_password(self):
    with COGNITO_LOCK:
        _, pool, client, username = _hashed_request(self)
        user = _user_or_404(pool, username)
        if not user.enabled:
            raise NotAuthorizedError("User is disabled.")
        recovery = (pool.extended_config.get("AccountRecoverySetting") or {}).get(
            "RecoveryMechanisms"
        ) or []
        if recovery and min(recovery, key=lambda m: m.get("Priority", 1))["Name"] == "admin_only":
            raise NotAuthorizedError("Contact administrator to reset password.")
        _send(pool, user, "FORGOT_PASSWORD", _new_code(), PURPOSE_FORGOT)
        details = _delivery(user)
        return ActionResult({"CodeDeliveryDetails": details} if details else {})


@handler
def confirm_forgot_password(self):
    with COGNITO_LOCK:
        backend, pool, client, username = _hashed_request(self)
        user = _user_or_404(pool, username)
        password = self._get_param("Password")
        if not isinstance(password, str):
            raise InvalidParameterException("Missing required parameter Password")
        backend._validate_password(pool.id, password)
        _consume_code(pool, user, PURPOSE_FORGOT, self._get_param("ConfirmationCode"))
        user.password = password
        if user.status in (UserStatus.RESET_REQUIRED, UserStatus.FORCE_CHANGE_PASSWORD):
            user.status = UserStatus.CONFIRMED
        return EmptyResult()


@handler
def admin_reset_user_password(self):
    with COGNITO_LOCK:
        result = _orig["admin_reset_user_password"](self)
        pool = self.backend.describe_user_pool(self._get_param("UserPoolId"))
        user = pool._get_user(self._get_param("Username"))
        _send(pool, user, "ADMIN_RESET", _new_code(), PURPOSE_FORGOT)
        return result


@handler
def admin_create_user(self):
    with COGNITO_LOCK:
        pool_id = self._get_param("UserPoolId")
        username = self._get_param("Username")
        action = self._get_param("MessageAction")
        attributes = self._get_param("UserAttributes", [])
        pool = self.backend.describe_user_pool(pool_id)
        _check_attribute_names(pool, attributes)
        temporary = self._get_param("TemporaryPassword") or _generate_temporary_password()
        if action == "RESEND":
            user = self.backend.admin_get_user(pool_id, username)
            if user.status != UserStatus.FORCE_CHANGE_PASSWORD:
                raise CognitoError(
                    "UnsupportedUserStateException",
                    f"Resend not possible. {user.username} status is not FORCE_CHANGE_PASSWORD.",
                )
            user.password = temporary
        else:
            user = self.backend.admin_create_user(pool_id, username, action, temporary, attributes)
        if action != "SUPPRESS":
            _send(pool, user, "INVITATION", temporary, None)
        return ActionResult({"User": user.to_json(extended=True)})


def _verification_after_update(pool, user, before: dict[str, str], attributes) -> list[dict[str, str]]:
    """Changing an auto-verified email/phone unverifies it and sends a code."""
    sent = []
    given = {a.get("Name") for a in attributes or []}
    for attribute in ("email", "phone_number"):
        if attribute not in given or attribute not in _auto_verified(pool):
            continue
        new = user.attribute_lookup.get(attribute)
        if not new or new == before.get(attribute):
            continue
        if f"{attribute}_verified" in given:
            continue  # an admin set the flag explicitly
        user.update_attributes([{"Name": f"{attribute}_verified", "Value": "false"}])
        _send(pool, user, "VERIFY_ATTRIBUTE", _new_code(), _verify_purpose(attribute), attribute)
        details = _delivery(user, attribute)
        if details:
            sent.append(details)
    return sent


@handler
def update_user_attributes(self):
    with COGNITO_LOCK:
        _, pool, user = _by_access_token(self._get_param("AccessToken"))
        attributes = self._get_param("UserAttributes") or []
        _check_attribute_names(pool, attributes)
        before = dict(user.attribute_lookup)
        _orig["update_user_attributes"](self)
        sent = _verification_after_update(pool, user, before, attributes)
        return ActionResult({"CodeDeliveryDetailsList": sent} if sent else {})


def _admin_verification_after_update(pool, user, before: dict[str, str], attributes) -> None:
    """AdminUpdateUserAttributes like Cognito: a changed auto-verified email/phone is verified
    only when the same request sets its `*_verified` to "true"; otherwise Cognito marks it
    unverified and messages the new address (VERIFY_ATTRIBUTE), even when the request itself
    set the flag to "false"."""
    given = {a.get("Name"): a.get("Value") for a in attributes or []}
    for attribute in ("email", "phone_number"):
        if attribute not in given or attribute not in _auto_verified(pool):
            continue
        new = user.attribute_lookup.get(attribute)
        if not new or new == before.get(attribute):
            continue
        if str(given.get(f"{attribute}_verified", "")).lower() == "true":
            continue
        user.update_attributes([{"Name": f"{attribute}_verified", "Value": "false"}])
        _send(pool, user, "VERIFY_ATTRIBUTE", _new_code(), _verify_purpose(attribute), attribute)


@handler
def admin_update_user_attributes(self):
    with COGNITO_LOCK:
        pool = self.backend.describe_user_pool(self._get_param("UserPoolId"))
        attributes = self._get_param("UserAttributes") or []
        _check_attribute_names(pool, attributes)
        user = pool._get_user(self._get_param("Username") or "")
        before = dict(user.attribute_lookup) if user is not None else {}
        result = _orig["admin_update_user_attributes"](self)
        if user is not None:
            _admin_verification_after_update(pool, user, before, attributes)
        return result


@handler
def get_user_attribute_verification_code(self):
    with COGNITO_LOCK:
        _, pool, user = _by_access_token(self._get_param("AccessToken"))
        attribute = self._get_param("AttributeName")
        if attribute not in ("email", "phone_number") or not user.attribute_lookup.get(attribute):
            raise InvalidParameterException(f"Attribute {attribute} cannot be verified")
        _send(pool, user, "VERIFY_ATTRIBUTE", _new_code(), _verify_purpose(attribute), attribute)
        return ActionResult({"CodeDeliveryDetails": _delivery(user, attribute)})


@handler
def verify_user_attribute(self):
    with COGNITO_LOCK:
        _, pool, user = _by_access_token(self._get_param("AccessToken"))
        attribute = self._get_param("AttributeName")
        _consume_code(pool, user, _verify_purpose(attribute), self._get_param("Code"))
        user.update_attributes([{"Name": f"{attribute}_verified", "Value": "true"}])
        return EmptyResult()


def _drop_tokens(pool, username: str) -> None:
    for token, entry in list(pool.refresh_tokens.items()):
        if entry is not None and entry[1] == username:
            pool.refresh_tokens[token] = None
    for store in (pool.access_tokens, pool.id_tokens):
        for token, (_, who) in list(store.items()):
            if who == username:
                store.pop(token, None)


@handler
def delete_user(self):
    with COGNITO_LOCK:
        _, pool, user = _by_access_token(self._get_param("AccessToken"))
        for group in list(user.groups):
            group.users.discard(user)
        _drop_tokens(pool, user.username)
        _forget_user(pool, user.username)
        pool.users.pop(user.username, None)
        return EmptyResult()


@handler
def delete_user_attributes(self):
    with COGNITO_LOCK:
        _, _, user = _by_access_token(self._get_param("AccessToken"))
        names = self._get_param("UserAttributeNames")
        if not isinstance(names, list):
            raise InvalidParameterException("Missing required parameter UserAttributeNames")
        user.delete_attributes(names)
        return EmptyResult()


@handler
def global_sign_out(self):
    # moto looks in the request's region only; unsigned requests default to us-east-1.
    with COGNITO_LOCK:
        _, pool, user = _by_access_token(self._get_param("AccessToken"))
        pool.sign_out(user.username)
        return EmptyResult()


@handler
def revoke_token(self):
    with COGNITO_LOCK:
        client_id = self._get_param("ClientId")
        token = self._get_param("Token")
        _, pool, client = _by_client(client_id)
        _require_client_secret(client, self._get_param("ClientSecret"))
        if not isinstance(token, str) or not token:
            raise InvalidParameterException("Missing required parameter Token")
        if token not in pool.refresh_tokens:
            if _jwt_claims(token):
                raise CognitoError("UnsupportedTokenTypeException", "Unsupported token type")
            return EmptyResult()  # RFC 7009: unknown tokens are a no-op
        entry = pool.refresh_tokens[token]
        if entry is None:
            return EmptyResult()
        token_client, _, origin_jti = entry
        if token_client != client.id:
            raise CognitoError("UnauthorizedException", "Client is not authorized to revoke this token")
        pool.refresh_tokens[token] = None
        for store in (pool.access_tokens, pool.id_tokens):
            for issued in list(store):
                if _jwt_claims(issued).get("origin_jti") == origin_jti:
                    store.pop(issued, None)
        return EmptyResult()


@handler
def get_tokens_from_refresh_token(self):
    with COGNITO_LOCK:
        client_id = self._get_param("ClientId")
        _, pool, client = _by_client(client_id)
        _require_client_secret(client, self._get_param("ClientSecret"))
        _check_flow_enabled(client, "REFRESH_TOKEN_AUTH")
        token = self._get_param("RefreshToken")
        _refresh_token_user(pool, client, token)
        access, id_token, expires_in = pool.create_tokens_from_refresh_token(token)
        return ActionResult(
            {
                "AuthenticationResult": {
                    "AccessToken": access,
                    "IdToken": id_token,
                    "ExpiresIn": expires_in,
                    "TokenType": "Bearer",
                }
            }
        )


def _mfa_options(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise InvalidParameterException("Missing required parameter MFAOptions")
    return [dict(o) for o in value if isinstance(o, dict)]


@handler
def set_user_settings(self):
    with COGNITO_LOCK:
        _, _, user = _by_access_token(self._get_param("AccessToken"))
        user.strict_mfa_options = _mfa_options(self._get_param("MFAOptions"))
        return EmptyResult()


@handler
def admin_set_user_settings(self):
    with COGNITO_LOCK:
        user = self.backend.admin_get_user(self._get_param("UserPoolId"), self._get_param("Username"))
        user.strict_mfa_options = _mfa_options(self._get_param("MFAOptions"))
        return EmptyResult()


# --------------------------------------------------------------------------------------
# CloudWatch GetMetricData and Route 53 GetHealthCheckStatus (what relayctl reads)
# --------------------------------------------------------------------------------------

from moto.cloudwatch import models as _cw  # noqa: E402
from moto.route53.responses import Route53 as _Route53Response  # noqa: E402

_cw_orig_get_metric_data = _cw.CloudWatchBackend.get_metric_data


def _cw_stat(values: list[float], stat: str) -> float | None:
    """A CloudWatch statistic over raw datapoint values; percentiles (pNN, pNN.N) by nearest
    rank, as CloudWatch computes them for datapoints sent as single values."""
    if not values:
        return None
    if stat == "Sum":
        return sum(values)
    if stat == "Average":
        return sum(values) / len(values)
    if stat == "Minimum":
        return min(values)
    if stat == "Maximum":
        return max(values)
    if stat == "SampleCount":
        return float(len(values))
    if stat.startswith("p"):
        q = float(stat[1:])
        ordered = sorted(values)
        rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100)
        return ordered[int(rank) - 1]
    raise _cw.ValidationError(f"The value {stat} for parameter MetricDataQueries.member.1.MetricStat.Stat is not valid.")


def cloudwatch_get_metric_data(self, queries, start_time, end_time, scan_by="TimestampAscending"):
    """Strict GetMetricData for MetricStat queries. Stock moto matches any dimensions when a
    query names none (so the dimensionless total and the per-`Action` series of an EMF line
    are summed together, counting every event twice), ignores the namespace when a query names
    dimensions, and has no percentiles. Real CloudWatch matches the exact dimension set.
    Queries with expressions go to moto as they are."""
    if any("Expression" in q for q in queries):
        return _cw_orig_get_metric_data(self, queries, start_time, end_time, scan_by)
    start_time = start_time.replace(microsecond=0)
    end_time = end_time.replace(microsecond=0)
    if start_time >= end_time:
        raise _cw.ValidationError("The parameter EndTime must be greater than StartTime.")
    results = []
    for query in queries:
        ms = query["MetricStat"]
        metric = ms["Metric"]
        want = sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions", []))
        period = int(ms["Period"])
        if period <= 0 or (period >= 60 and period % 60):
            raise _cw.ValidationError("The parameter Period must be 1, 5, 10, 30 or a multiple of 60.")
        points = [
            md for md in self.get_all_metrics()
            if isinstance(md, _cw.MetricDatum)
            and md.namespace == metric["Namespace"] and md.name == metric["MetricName"]
            and sorted((d.name, d.value) for d in md.dimensions) == want
            and (not ms.get("Unit") or md.unit == ms["Unit"])
            and start_time <= md.timestamp < end_time
        ]
        values, stamps = [], []
        bucket = start_time
        while bucket < end_time:
            nxt = bucket + _cw.timedelta(seconds=period)
            v = _cw_stat([md.value for md in points if bucket <= md.timestamp < nxt], ms["Stat"])
            if v is not None:
                values.append(v)
                stamps.append(bucket)
            bucket = nxt
        if scan_by == "TimestampDescending":
            values.reverse()
            stamps.reverse()
        if query.get("ReturnData", True):
            results.append({"id": query["Id"], "label": query.get("Label") or metric["MetricName"],
                            "values": values, "timestamps": stamps, "status_code": "Complete"})
    return results


_cw.CloudWatchBackend.get_metric_data = cloudwatch_get_metric_data

# Route 53 health checkers, as relayctl sees them through GetHealthCheckStatus. Stock moto
# answers "Success" for every health check whatever its endpoint does. Here each call probes
# the health check's endpoint (Type HTTP/HTTPS, IPAddress or FullyQualifiedDomainName, Port,
# ResourcePath) once and reports that result from three checker regions. Route 53's real
# checkers probe every RequestInterval and need FailureThreshold results in a row; this one
# answers with the endpoint's state now (no threshold, no interval).
R53_CHECKERS = ("us-east-1", "eu-west-1", "ap-southeast-1")


def _r53_probe(hc) -> str:
    import urllib.error
    import urllib.request

    host = hc.ip_address or hc.fqdn
    scheme = "https" if (hc.type_ or "HTTP").upper().startswith("HTTPS") else "http"
    url = f"{scheme}://{host}:{hc.port or (443 if scheme == 'https' else 80)}{hc.resource_path or '/'}"
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            code = resp.status
    except urllib.error.HTTPError as e:
        code = e.code
    except OSError as e:
        return f"Failure: Connection failed ({type(e).__name__})."
    if 200 <= code < 400:
        return f"Success: HTTP Status Code {code}, OK"
    return f"Failure: HTTP Status Code {code}."


def route53_get_health_check_status(self):
    hc = self.backend.get_health_check(self._get_param("HealthCheckId"))
    status = _r53_probe(hc)
    now = _cw.utcnow()
    return ActionResult({"HealthCheckObservations": [
        {"Region": region, "IPAddress": "127.0.13.37", "StatusReport": {"Status": status, "CheckedTime": now}}
        for region in R53_CHECKERS
    ]})


_Route53Response.get_health_check_status = route53_get_health_check_status


# --------------------------------------------------------------------------------------
# WSGI layer: control endpoints, faults, call counts
# --------------------------------------------------------------------------------------


def _json_response(start_response, status: str, payload: Any, content_type="application/json"):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def _cognito_error(start_response, status: str, error_type: str, message: str):
    body = json.dumps({"__type": error_type, "message": message}).encode()
    start_response(
        status,
        [
            ("Content-Type", JSON_11),
            ("x-amzn-ErrorType", error_type),
            ("x-amzn-RequestId", secrets.token_hex(16)),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]


class DropConnection(ConnectionAbortedError):
    """Raised after the socket is shut down; werkzeug treats it as a dropped connection."""


def _drop(environ) -> None:
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    raise DropConnection("strict_moto: dropped on purpose")


def _read_body(environ) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ.get("wsgi.input")
    body = stream.read(length) if (stream is not None and length > 0) else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _next_fault(action: str = "") -> str | None:
    with STATE_LOCK:
        if DOWN["down"]:
            return "drop"
        if FAULT_ACTIONS and action not in FAULT_ACTIONS:
            return None
        for kind in FAULT_ORDER:
            if FAULTS[kind] > 0:
                FAULTS[kind] -= 1
                return kind
    return None


class StrictApp:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_strict/"):
            return self.control(environ, start_response, path[len("/_strict/"):].strip("/"))
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        _observe_request(target, environ)
        if target == SQS_SEND_TARGET and SQS_SEND_FAULTS:
            refused = self.sqs_send_fault(environ, start_response)
            if refused is not None:
                return refused
        if not target.startswith(COGNITO_TARGET_PREFIX):
            return self.app(environ, start_response)

        action = target[len(COGNITO_TARGET_PREFIX):]
        _read_body(environ)
        with STATE_LOCK:
            CALLS[action] += 1
        fault = _next_fault(action)
        if fault is not None:
            with STATE_LOCK:
                FAULT_HITS.setdefault(action, Counter())[fault] += 1
        if fault == "drop":
            _drop(environ)
        if fault == "throttle":
            return _cognito_error(start_response, "400 Bad Request", "TooManyRequestsException", "Rate exceeded")
        if fault == "error500":
            return _cognito_error(
                start_response, "500 Internal Server Error", "InternalErrorException", "Internal server error."
            )
        if fault == "slow":
            time.sleep(SLOW_SECONDS)

        captured: dict[str, Any] = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        with COGNITO_LOCK:
            chunks = self.app(environ, capture)
            try:
                body = b"".join(chunks)
            finally:
                if hasattr(chunks, "close"):
                    chunks.close()
        headers = [
            (k, v)
            for k, v in captured["headers"]
            if k.lower() not in ("content-type", "content-length", "status")
            and not k.lower().startswith("x-moto-")
        ]
        headers.append(("Content-Type", JSON_11))
        headers.append(("Content-Length", str(len(body))))
        start_response(captured["status"], headers)
        return [body]

    def sqs_send_fault(self, environ, start_response):
        """Refuses a SendMessage (JSON protocol) whose group has a fault left, like SQS refusing
        a send (403 AccessDenied, which SDKs do not retry); else None."""
        try:
            group = json.loads(_read_body(environ) or b"{}").get("MessageGroupId")
        except ValueError:
            return None
        with STATE_LOCK:
            fault = SQS_SEND_FAULTS.get(group)
            if fault is None:
                return None
            if fault["skip"] > 0:
                fault["skip"] -= 1
                return None
            if fault["count"] <= 0:
                return None
            fault["count"] -= 1
            SQS_SEND_FAILED[group] += 1
        body = json.dumps({"__type": "com.amazonaws.sqs#AccessDenied", "message": "strict_moto: send refused on purpose"}).encode()
        start_response("403 Forbidden", [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-query-error", "AccessDenied;Sender"),
                                          ("x-amzn-RequestId", secrets.token_hex(16)), ("Content-Length", str(len(body)))])
        return [body]

    # -- /_strict/* -------------------------------------------------------------------

    def control(self, environ, start_response, name: str):
        method = environ.get("REQUEST_METHOD", "GET")
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        raw = _read_body(environ)
        try:
            payload = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return _json_response(start_response, "400 Bad Request", {"error": "body is not JSON"})

        if name == "health" and method == "GET":
            return _json_response(start_response, "200 OK", b"ok", "text/plain")
        if name == "mailbox":
            if method == "GET":
                with STATE_LOCK:
                    items = [
                        m
                        for m in MAILBOX
                        if (not query.get("pool_id") or m["pool_id"] == query["pool_id"])
                        and (
                            not query.get("username")
                            or query["username"] in (m["username"], m["destination"])
                        )
                        and (not query.get("kind") or m["kind"] == query["kind"])
                    ]
                return _json_response(start_response, "200 OK", items)
            if method == "DELETE":
                with STATE_LOCK:
                    MAILBOX.clear()
                return _json_response(start_response, "200 OK", [])
        if name == "faults":
            if method == "GET":
                with STATE_LOCK:
                    hits = {a: dict(c) for a, c in FAULT_HITS.items()}
                    return _json_response(start_response, "200 OK",
                                          {**FAULTS, "down": DOWN["down"], "actions": sorted(FAULT_ACTIONS), "hits": hits})
            if method == "POST":
                actions = payload.pop("actions", None) if isinstance(payload, dict) else None
                if actions is not None and (not isinstance(actions, list) or not all(isinstance(a, str) for a in actions)):
                    return _json_response(start_response, "400 Bad Request", {"error": "expected \"actions\": [str]"})
                if not isinstance(payload, dict) or any(
                    k not in FAULTS or not isinstance(v, int) or isinstance(v, bool) or v < 0
                    for k, v in payload.items()
                ):
                    return _json_response(
                        start_response,
                        "400 Bad Request",
                        {"error": "expected {\"throttle\"|\"error500\"|\"drop\"|\"slow\": non-negative int}"},
                    )
                with STATE_LOCK:
                    FAULTS.update(payload)
                    if actions is not None:
                        FAULT_ACTIONS.clear()
                        FAULT_ACTIONS.update(actions)
                    return _json_response(start_response, "200 OK", {**FAULTS, "down": DOWN["down"], "actions": sorted(FAULT_ACTIONS)})
        if name == "sqs_faults":
            if method == "POST":
                ok = isinstance(payload, dict) and isinstance(payload.get("group"), str) and all(
                    isinstance(payload.get(k, 0), int) and not isinstance(payload.get(k, 0), bool) and payload.get(k, 0) >= 0
                    for k in ("skip", "count"))
                if not ok:
                    return _json_response(start_response, "400 Bad Request",
                                          {"error": "expected {\"group\": str, \"skip\": int, \"count\": int}"})
                with STATE_LOCK:
                    SQS_SEND_FAULTS[payload["group"]] = {"skip": payload.get("skip", 0), "count": payload.get("count", 1)}
            elif method == "DELETE":
                with STATE_LOCK:
                    SQS_SEND_FAULTS.clear()
                    SQS_SEND_FAILED.clear()
            with STATE_LOCK:
                return _json_response(start_response, "200 OK", {"faults": SQS_SEND_FAULTS, "failed": dict(SQS_SEND_FAILED)})
        if name == "down" and method == "POST":
            if not isinstance(payload, dict) or not isinstance(payload.get("down"), bool):
                return _json_response(start_response, "400 Bad Request", {"error": "expected {\"down\": bool}"})
            with STATE_LOCK:
                DOWN["down"] = payload["down"]
            return _json_response(start_response, "200 OK", {"down": payload["down"]})
        if name == "reset" and method == "POST":
            with STATE_LOCK:
                for kind in FAULTS:
                    FAULTS[kind] = 0
                FAULT_ACTIONS.clear()
                DOWN["down"] = False
            return _json_response(start_response, "200 OK", {**FAULTS, "down": False})
        if name == "sqs_sent" and method == "GET":
            with STATE_LOCK:
                return _json_response(start_response, "200 OK", dict(SQS_SENT))
        if name == "secret_reads" and method == "GET":
            with STATE_LOCK:
                return _json_response(start_response, "200 OK", dict(SECRET_READS))
        if name == "contexts" and method == "GET":
            with STATE_LOCK:
                items = [c for c in CONTEXTS if not query.get("username") or c["username"] == query["username"]]
            return _json_response(start_response, "200 OK", items)
        if name == "lambda":
            if method == "POST":
                ok = isinstance(payload, dict) and all(isinstance(payload.get(k), str) and payload.get(k)
                                                       for k in ("arn", "url"))
                timeout = payload.get("timeout", LAMBDA_TIMEOUT_SECONDS) if isinstance(payload, dict) else None
                if not ok or not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
                    return _json_response(start_response, "400 Bad Request",
                                          {"error": "expected {\"arn\": str, \"url\": str, \"timeout\"?: seconds}"})
                with STATE_LOCK:
                    LAMBDAS[payload["arn"]] = {"url": payload["url"], "timeout": float(timeout)}
            elif method == "DELETE":
                with STATE_LOCK:
                    if isinstance(payload, dict) and payload.get("arn"):
                        LAMBDAS.pop(payload["arn"], None)
                    else:
                        LAMBDAS.clear()
            with STATE_LOCK:
                return _json_response(start_response, "200 OK", {"functions": LAMBDAS})
        if name == "calls":
            if method == "GET":
                with STATE_LOCK:
                    return _json_response(start_response, "200 OK", dict(CALLS))
            if method == "DELETE":
                with STATE_LOCK:
                    CALLS.clear()
                    FAULT_HITS.clear()
                return _json_response(start_response, "200 OK", {})
        return _json_response(start_response, "404 Not Found", {"error": f"no such endpoint {method} /_strict/{name}"})


def build_app():
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return StrictApp(DomainDispatcherApplication(create_backend_app))


def main(argv: list[str] | None = None) -> None:
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import run_simple

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    verbose = args.verbose

    class Handler(MotoRequestHandler):
        def log_request(self, *a, **kw):  # noqa: D401 - quiet by default
            if verbose:
                super().log_request(*a, **kw)

        def finish(self):
            try:
                super().finish()
            except OSError:
                pass  # the connection was dropped on purpose

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run_simple(args.host, args.port, build_app(), threaded=True, request_handler=Handler)


if __name__ == "__main__":
    main()
