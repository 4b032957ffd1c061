"""A toy custom-auth trigger (Define / Create / Verify in one function) for strict_moto's own
tests: a minimal Lambda Runtime API client, so the emulator's CUSTOM_AUTH loop is tested without
the Rust binary. The challenge: answer the word in private parameter `answer` (one per challenge,
random), given publicly as `word`; a correct answer issues tokens, three wrong ones fail.

clientMetadata `mode`: "crash" makes the function fail, "hang" makes it not answer,
"garbage" makes it return something that is not the event.
Every event it receives is appended (one JSON per line) to $TOY_TRIGGER_EVENTS if set."""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.request

API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime"


def handle(event: dict) -> dict:
    source = event["triggerSource"]
    request, response = event["request"], event["response"]
    mode = (request.get("clientMetadata") or {}).get("mode")
    if mode == "crash":
        raise RuntimeError("toy trigger crashed on purpose")
    if mode == "hang":
        time.sleep(float((request.get("clientMetadata") or {}).get("seconds", "3")))
    if mode == "garbage":
        return {"not": "an event"}
    if source == "DefineAuthChallenge_Authentication":
        session = request["session"]
        if session and session[-1]["challengeResult"] is True:
            response.update(issueTokens=True, failAuthentication=False)
        elif len(session) >= 3:
            response.update(issueTokens=False, failAuthentication=True)
        else:
            response.update(challengeName="CUSTOM_CHALLENGE", issueTokens=False, failAuthentication=False)
    elif source == "CreateAuthChallenge_Authentication":
        word = secrets.token_hex(4)
        response.update(publicChallengeParameters={"word": word}, privateChallengeParameters={"answer": word},
                        challengeMetadata=f"round-{len(request['session']) + 1}")
    elif source == "VerifyAuthChallengeResponse_Authentication":
        response["answerCorrect"] = request["challengeAnswer"] == request["privateChallengeParameters"]["answer"]
    else:
        raise ValueError(f"unexpected trigger {source}")
    return event


def post(path: str, body: object) -> None:
    req = urllib.request.Request(f"{API}/{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()


def main() -> None:
    log = os.environ.get("TOY_TRIGGER_EVENTS")
    while True:
        try:
            with urllib.request.urlopen(f"{API}/invocation/next", timeout=120) as r:
                rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
                event = json.loads(r.read())
        except OSError:
            return  # the runtime went away
        if log:
            with open(log, "a") as f:
                f.write(json.dumps(event) + "\n")
        try:
            post(f"invocation/{rid}/response", handle(event))
        except Exception as e:  # noqa: BLE001 - reported to the runtime like a Lambda error
            post(f"invocation/{rid}/error", {"errorType": type(e).__name__, "errorMessage": str(e)})


if __name__ == "__main__":
    main()
