// Drives one step of a user journey with a real Cognito client library, the way an app built
// for the app pool does it, against any Cognito-compatible endpoint (a cognito-relay proxy).
//
//   node journey.mjs '<json>'
//
// json: {"lib": "amplify" | "identity-js", "action": ..., "endpoint": "http://127.0.0.1:port",
//        "poolId": the app pool id, "clientId": the public ClientId, "state": path of a JSON file
//        that plays the app's local storage (tokens survive between steps, as in an app),
//        "username", "password", "email", "code", "forceRefresh"}
// Prints one JSON line: {"ok": true, ...result} or {"ok": false, "name", "message"}.
// Exit code 0 either way (2 for a usage error), so the caller asserts on the JSON.
//
// Actions: signUp, confirmSignUp, resendSignUpCode, signIn, session (fetch the current
// session, `forceRefresh` to refresh it), signOut (local), globalSignOut, currentUser.
// Results carry decoded token claims only; the raw tokens stay in the state file.

import fs from "node:fs";

const args = JSON.parse(process.argv[2] ?? "null");
if (!args || !args.lib || !args.action) {
  console.error("usage: node journey.mjs '{\"lib\":...,\"action\":...}'");
  process.exit(2);
}

// -- the app's local storage, kept in a file between steps -------------------------------------

function load() {
  try {
    return JSON.parse(fs.readFileSync(args.state, "utf8"));
  } catch {
    return {};
  }
}
function save(data) {
  if (args.state) fs.writeFileSync(args.state, JSON.stringify(data));
}
const syncStorage = {
  setItem(k, v) { const d = load(); d[k] = String(v); save(d); return d[k]; },
  getItem(k) { const d = load(); return Object.prototype.hasOwnProperty.call(d, k) ? d[k] : null; },
  removeItem(k) { const d = load(); delete d[k]; save(d); },
  clear() { save({}); },
};
const asyncStorage = {
  async setItem(k, v) { syncStorage.setItem(k, v); },
  async getItem(k) { return syncStorage.getItem(k); },
  async removeItem(k) { syncStorage.removeItem(k); },
  async clear() { syncStorage.clear(); },
};

function claims(jwt) {
  if (!jwt) return null;
  const part = jwt.split(".")[1];
  return JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
}
function summary(accessJwt, idJwt) {
  const a = claims(accessJwt);
  const i = claims(idJwt);
  return {
    iss: a?.iss ?? null,
    username: a?.username ?? null,
    client_id: a?.client_id ?? null,
    sub: a?.sub ?? null,
    jti: a?.jti ?? null,
    id_iss: i?.iss ?? null,
    email: i?.email ?? null,
  };
}
function fail(e) {
  return { ok: false, name: e?.name ?? e?.code ?? "Error", message: e?.message ?? String(e) };
}

// -- Amplify v6 -------------------------------------------------------------------------------

async function amplify() {
  const { Amplify } = await import("aws-amplify");
  const auth = await import("aws-amplify/auth");
  const { cognitoUserPoolsTokenProvider } = await import("aws-amplify/auth/cognito");
  Amplify.configure({
    Auth: {
      Cognito: {
        userPoolId: args.poolId,
        userPoolClientId: args.clientId,
        userPoolEndpoint: args.endpoint,
        loginWith: { email: true, username: true },
      },
    },
  });
  cognitoUserPoolsTokenProvider.setKeyValueStorage(asyncStorage);

  switch (args.action) {
    case "signUp": {
      const out = await auth.signUp({
        username: args.username,
        password: args.password,
        options: { userAttributes: { email: args.email ?? args.username } },
      });
      return { ok: true, isSignUpComplete: out.isSignUpComplete, nextStep: out.nextStep?.signUpStep, userId: out.userId ?? null };
    }
    case "confirmSignUp": {
      const out = await auth.confirmSignUp({ username: args.username, confirmationCode: args.code });
      return { ok: true, isSignUpComplete: out.isSignUpComplete, nextStep: out.nextStep?.signUpStep };
    }
    case "resendSignUpCode": {
      const out = await auth.resendSignUpCode({ username: args.username });
      return { ok: true, deliveryMedium: out.deliveryMedium ?? null, destination: out.destination ?? null };
    }
    case "signIn": {
      const out = await auth.signIn({ username: args.username, password: args.password });
      const result = { ok: true, isSignedIn: out.isSignedIn, nextStep: out.nextStep?.signInStep };
      if (out.isSignedIn) {
        const s = await auth.fetchAuthSession();
        Object.assign(result, summary(s.tokens?.accessToken?.toString(), s.tokens?.idToken?.toString()));
      }
      return result;
    }
    case "session": {
      const s = await auth.fetchAuthSession({ forceRefresh: !!args.forceRefresh });
      if (!s.tokens) return { ok: false, name: "NoSession", message: "fetchAuthSession returned no tokens" };
      return { ok: true, ...summary(s.tokens.accessToken?.toString(), s.tokens.idToken?.toString()) };
    }
    case "currentUser": {
      const u = await auth.getCurrentUser();
      return { ok: true, username: u.username, userId: u.userId };
    }
    case "signOut":
      await auth.signOut();
      return { ok: true };
    case "globalSignOut":
      await auth.signOut({ global: true });
      return { ok: true };
    default:
      throw new Error(`unknown action ${args.action}`);
  }
}

// -- amazon-cognito-identity-js ---------------------------------------------------------------

async function identityJs() {
  const lib = (await import("amazon-cognito-identity-js")).default;
  const { CognitoUserPool, CognitoUser, AuthenticationDetails, CognitoUserAttribute } = lib;
  const pool = new CognitoUserPool({
    UserPoolId: args.poolId,
    ClientId: args.clientId,
    endpoint: args.endpoint,
    Storage: syncStorage,
  });
  const user = () => new CognitoUser({ Username: args.username, Pool: pool, Storage: syncStorage });
  const cb = (fn) => new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))));
  const sessionSummary = (s) => summary(s.getAccessToken().getJwtToken(), s.getIdToken().getJwtToken());

  switch (args.action) {
    case "signUp": {
      const attrs = [new CognitoUserAttribute({ Name: "email", Value: args.email ?? args.username })];
      const out = await cb((done) => pool.signUp(args.username, args.password, attrs, null, done));
      return { ok: true, userConfirmed: out.userConfirmed, userSub: out.userSub };
    }
    case "confirmSignUp": {
      const out = await cb((done) => user().confirmRegistration(args.code, true, done));
      return { ok: true, result: out };
    }
    case "resendSignUpCode": {
      const out = await cb((done) => user().resendConfirmationCode(done));
      return { ok: true, destination: out?.CodeDeliveryDetails?.Destination ?? null };
    }
    case "signIn": {
      // The library's default: USER_SRP_AUTH.
      const u = user();
      const details = new AuthenticationDetails({ Username: args.username, Password: args.password });
      const session = await new Promise((resolve, reject) =>
        u.authenticateUser(details, {
          onSuccess: resolve,
          onFailure: reject,
          newPasswordRequired: () => reject(Object.assign(new Error("new password required"), { name: "NewPasswordRequired" })),
          mfaRequired: () => reject(Object.assign(new Error("mfa required"), { name: "MfaRequired" })),
          totpRequired: () => reject(Object.assign(new Error("totp required"), { name: "TotpRequired" })),
          customChallenge: () => reject(Object.assign(new Error("custom challenge"), { name: "CustomChallenge" })),
        }),
      );
      return { ok: true, authFlow: u.getAuthenticationFlowType(), ...sessionSummary(session) };
    }
    case "session":
    case "refreshSession": {
      const u = pool.getCurrentUser();
      if (!u) return { ok: false, name: "NoSession", message: "no current user in storage" };
      const session = await cb((done) => u.getSession(done));
      if (args.action === "session") return { ok: true, ...sessionSummary(session) };
      const fresh = await cb((done) => u.refreshSession(session.getRefreshToken(), done));
      return { ok: true, ...sessionSummary(fresh) };
    }
    case "globalSignOut": {
      const u = pool.getCurrentUser();
      if (!u) return { ok: false, name: "NoSession", message: "no current user in storage" };
      await cb((done) => u.getSession(done));
      await new Promise((resolve, reject) => u.globalSignOut({ onSuccess: resolve, onFailure: reject }));
      return { ok: true };
    }
    case "signOut": {
      const u = pool.getCurrentUser();
      if (u) u.signOut();
      return { ok: true };
    }
    default:
      throw new Error(`unknown action ${args.action}`);
  }
}

try {
  const out = args.lib === "amplify" ? await amplify() : await identityJs();
  process.stdout.write(JSON.stringify(out) + "\n");
} catch (e) {
  process.stdout.write(JSON.stringify(fail(e)) + "\n");
}
