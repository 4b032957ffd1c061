//! The AWS permissions of every cognito-relay binary, declared once, next to the adapters that
//! make the calls.
//!
//! [`GRANTS`] lists, per deployed role (`proxy`, `replicator`, `auth-trigger`, `operator` =
//! relayctl), each IAM action and the resource it is called on. Resources are symbolic
//! (`own-fallback-queue`, `peer-inbound-queue`, ...): the CDK app maps each symbol to the ARN of
//! that resource in the region it deploys. The table is exported to `cdk/permissions.json`, and
//! the tests below keep everything in step:
//!
//! - `cdk/permissions.json` is byte-identical to [`manifest_json`] (regenerate it with
//!   `RELAY_WRITE_PERMISSIONS=1 cargo test -p relay-aws permissions`);
//! - every row made by an SDK call names the source file that makes it, and that file does make
//!   it (a grant whose call was removed fails);
//! - every SDK call (`.operation()...send()`) in a source file that uses an AWS SDK client is
//!   claimed by a row for that file (a new call without a grant fails).
//!
//! The CDK tests then assert that each role grants exactly its rows (`cdk/test/permissions.test.ts`).

use std::fmt::Write as _;

/// How a permission is exercised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// An SDK call in `site` (a source file relative to the repository root).
    Sdk(&'static str),
    /// An SDK call in `site` made only by the standalone (non-Lambda) process: the Lambda
    /// deployment does not need it (its event source mapping does the queue work).
    Standalone(&'static str),
    /// Used by the Lambda service on the function's behalf through its SQS event source mapping.
    EventSource,
    /// Checked by SQS against the caller when it sends to or receives from a KMS-encrypted queue.
    QueueEncryption,
    /// Written by the Lambda runtime (the function's own log group).
    LambdaRuntime,
    /// Planned by another issue, whose code is not on main yet (`what`): granted so the stack is
    /// ready, with no call site to check until the code lands (then it becomes `Sdk`).
    Planned(&'static str),
}

impl Via {
    fn kind(&self) -> &'static str {
        match self {
            Via::Sdk(_) => "sdk",
            Via::Standalone(_) => "standalone",
            Via::EventSource => "event-source",
            Via::QueueEncryption => "queue-encryption",
            Via::LambdaRuntime => "lambda-runtime",
            Via::Planned(_) => "planned",
        }
    }
    fn site(&self) -> Option<&'static str> {
        match self {
            Via::Sdk(s) | Via::Standalone(s) => Some(s),
            _ => None,
        }
    }
}

/// One permission of one role: `action` on `resource`.
#[derive(Clone, Copy, Debug)]
pub struct Grant {
    /// `proxy`, `replicator`, `auth-trigger` or `operator` (relayctl).
    pub role: &'static str,
    /// The IAM action, e.g. `sqs:SendMessage`.
    pub action: &'static str,
    /// The symbolic resource (see the module doc).
    pub resource: &'static str,
    pub via: Via,
    /// Why the binary needs it (shown in the manifest and the closing notes).
    pub why: &'static str,
}

const fn g(
    role: &'static str,
    action: &'static str,
    resource: &'static str,
    via: Via,
    why: &'static str,
) -> Grant {
    Grant {
        role,
        action,
        resource,
        via,
        why,
    }
}

const COGNITO: &str = "crates/aws/src/cognito.rs";
const QUEUE: &str = "crates/aws/src/queue.rs";
const LIB: &str = "crates/aws/src/lib.rs";
const STATE: &str = "crates/aws/src/state.rs";
const LIMITS: &str = "crates/aws/src/limits.rs";
const POLICY: &str = "crates/proxy/src/policy.rs";
const STREAM: &str = "crates/proxy/src/stream.rs";
const RELAYCTL_CLOUDWATCH: &str = "crates/relayctl/src/cloudwatch.rs";
const RELAYCTL_HEALTH: &str = "crates/relayctl/src/health.rs";

/// Every permission of every role. Order does not matter (the export sorts).
pub const GRANTS: &[Grant] = &[
    // ------------------------------------------------------------------ proxy
    g(
        "proxy",
        "cognito-idp:DescribeUserPool",
        "own-pool",
        Via::Sdk(COGNITO),
        "GET /health probes the home pool (Pool::ping)",
    ),
    g(
        "proxy",
        "cognito-idp:AdminGetUser",
        "own-pool",
        Via::Sdk(COGNITO),
        "half-finished sign-ups: tell a replicated, unconfirmed placeholder from a real user",
    ),
    g(
        "proxy",
        "cognito-idp:ListUsers",
        "own-pool",
        Via::Sdk(COGNITO),
        "half-finished sign-ups: find a placeholder by its sign-in alias",
    ),
    g(
        "proxy",
        "cognito-idp:AdminDeleteUser",
        "own-pool",
        Via::Sdk(COGNITO),
        "half-finished sign-ups: replace a disabled placeholder by a real SignUp",
    ),
    g(
        "proxy",
        "sqs:SendMessage",
        "peer-inbound-queue",
        Via::Sdk(QUEUE),
        "replication events of successful mutations",
    ),
    g(
        "proxy",
        "sqs:SendMessage",
        "own-fallback-queue",
        Via::Sdk(QUEUE),
        "events the peer queue did not take",
    ),
    g(
        "proxy",
        "sqs:GetQueueAttributes",
        "own-fallback-queue",
        Via::Sdk(QUEUE),
        "fallback depth: a user's events stay on the fallback queue until it is empty",
    ),
    g(
        "proxy",
        "kms:GenerateDataKey",
        "own-queue-key",
        Via::QueueEncryption,
        "send to the KMS-encrypted fallback queue",
    ),
    g(
        "proxy",
        "kms:Decrypt",
        "own-queue-key",
        Via::QueueEncryption,
        "send to the KMS-encrypted fallback queue (data key reuse)",
    ),
    g(
        "proxy",
        "kms:GenerateDataKey",
        "peer-queue-key",
        Via::QueueEncryption,
        "send to the peer's KMS-encrypted inbound queue",
    ),
    g(
        "proxy",
        "kms:Decrypt",
        "peer-queue-key",
        Via::QueueEncryption,
        "send to the peer's KMS-encrypted inbound queue (data key reuse)",
    ),
    g(
        "proxy",
        "secretsmanager:GetSecretValue",
        "clients-secret",
        Via::Sdk(LIB),
        "public ClientId -> regional client id + secret",
    ),
    g(
        "proxy",
        "secretsmanager:GetSecretValue",
        "replication-key",
        Via::Sdk(LIB),
        "seal replication events",
    ),
    g(
        "proxy",
        "secretsmanager:GetSecretValue",
        "refresh-key",
        Via::Sdk(LIB),
        "seal and open the refresh tokens it hands out",
    ),
    g(
        "proxy",
        "secretsmanager:GetSecretValue",
        "bridge-key",
        Via::Sdk(LIB),
        "sign bridge assertions for CUSTOM_AUTH on the home pool",
    ),
    g(
        "proxy",
        "ssm:GetParameter",
        "drain-parameter",
        Via::Sdk(LIB),
        "GET /health answers 503 while drained",
    ),
    g(
        "proxy",
        "ssm:GetParameter",
        "sign-up-policy-parameter",
        Via::Sdk(POLICY),
        "re-reads the sign-up policy",
    ),
    g(
        "proxy",
        "dynamodb:GetItem",
        "state-table",
        Via::Sdk(STATE),
        "per-user order marks",
    ),
    g(
        "proxy",
        "dynamodb:PutItem",
        "state-table",
        Via::Sdk(STATE),
        "per-user order marks",
    ),
    g(
        "proxy",
        "dynamodb:GetItem",
        "limits-table",
        Via::Sdk(LIMITS),
        "shared rate-limit counters",
    ),
    g(
        "proxy",
        "dynamodb:UpdateItem",
        "limits-table",
        Via::Sdk(LIMITS),
        "shared rate-limit counters (ADD)",
    ),
    g(
        "proxy",
        "dynamodb:GetItem",
        "peer-limits-table",
        Via::Sdk(LIMITS),
        "failed sign-ins and locks shared with the other region (RELAY_PEER_LIMITS_TABLE)",
    ),
    g(
        "proxy",
        "dynamodb:UpdateItem",
        "peer-limits-table",
        Via::Sdk(LIMITS),
        "failed sign-ins and locks shared with the other region (ADD, conditional raise)",
    ),
    g(
        "proxy",
        "events:PutEvents",
        "event-bus",
        Via::Sdk(STREAM),
        "request events",
    ),
    g(
        "proxy",
        "logs:CreateLogStream",
        "own-log-group",
        Via::LambdaRuntime,
        "function logs and EMF metrics",
    ),
    g(
        "proxy",
        "logs:PutLogEvents",
        "own-log-group",
        Via::LambdaRuntime,
        "function logs and EMF metrics",
    ),
    // ------------------------------------------------------------------ replicator
    g(
        "replicator",
        "cognito-idp:ListUsers",
        "own-pool",
        Via::Sdk(COGNITO),
        "find a user by alias attribute",
    ),
    g(
        "replicator",
        "cognito-idp:AdminGetUser",
        "own-pool",
        Via::Sdk(COGNITO),
        "read the user before replaying",
    ),
    g(
        "replicator",
        "cognito-idp:AdminCreateUser",
        "own-pool",
        Via::Sdk(COGNITO),
        "replay sign-ups",
    ),
    g(
        "replicator",
        "cognito-idp:AdminSetUserPassword",
        "own-pool",
        Via::Sdk(COGNITO),
        "replay password changes",
    ),
    g(
        "replicator",
        "cognito-idp:AdminEnableUser",
        "own-pool",
        Via::Sdk(COGNITO),
        "replay enable",
    ),
    g(
        "replicator",
        "cognito-idp:AdminDisableUser",
        "own-pool",
        Via::Sdk(COGNITO),
        "replay disable",
    ),
    g(
        "replicator",
        "cognito-idp:AdminUpdateUserAttributes",
        "own-pool",
        Via::Sdk(COGNITO),
        "replay attribute changes and verifications",
    ),
    g(
        "replicator",
        "cognito-idp:AdminDeleteUserAttributes",
        "own-pool",
        Via::Sdk(COGNITO),
        "replay attribute deletions",
    ),
    g(
        "replicator",
        "cognito-idp:AdminSetUserMFAPreference",
        "own-pool",
        Via::Sdk(COGNITO),
        "replay MFA preferences",
    ),
    g(
        "replicator",
        "cognito-idp:AdminSetUserSettings",
        "own-pool",
        Via::Sdk(COGNITO),
        "replay MFA settings",
    ),
    g(
        "replicator",
        "cognito-idp:AdminDeleteUser",
        "own-pool",
        Via::Sdk(COGNITO),
        "replay deletions",
    ),
    g(
        "replicator",
        "cognito-idp:AdminUserGlobalSignOut",
        "own-pool",
        Via::Sdk(COGNITO),
        "replay global sign-outs",
    ),
    g(
        "replicator",
        "cognito-idp:DescribeUserPool",
        "own-pool",
        Via::Standalone(COGNITO),
        "the standalone replicator probes the pool after a failed batch",
    ),
    g(
        "replicator",
        "sqs:SendMessage",
        "own-dlq",
        Via::Sdk(QUEUE),
        "dead-letter an event with its reason",
    ),
    g(
        "replicator",
        "sqs:SendMessage",
        "peer-inbound-queue",
        Via::Sdk(QUEUE),
        "forward the fallback queue to the peer",
    ),
    g(
        "replicator",
        "sqs:ReceiveMessage",
        "own-inbound-queue",
        Via::EventSource,
        "event source: inbound events",
    ),
    g(
        "replicator",
        "sqs:DeleteMessage",
        "own-inbound-queue",
        Via::EventSource,
        "event source: inbound events",
    ),
    g(
        "replicator",
        "sqs:ChangeMessageVisibility",
        "own-inbound-queue",
        Via::EventSource,
        "event source: inbound events",
    ),
    g(
        "replicator",
        "sqs:GetQueueAttributes",
        "own-inbound-queue",
        Via::EventSource,
        "event source: inbound events",
    ),
    g(
        "replicator",
        "sqs:GetQueueUrl",
        "own-inbound-queue",
        Via::EventSource,
        "event source (CDK grantConsumeMessages)",
    ),
    g(
        "replicator",
        "sqs:ReceiveMessage",
        "own-fallback-queue",
        Via::EventSource,
        "event source: fallback forwarding",
    ),
    g(
        "replicator",
        "sqs:DeleteMessage",
        "own-fallback-queue",
        Via::EventSource,
        "event source: fallback forwarding",
    ),
    g(
        "replicator",
        "sqs:ChangeMessageVisibility",
        "own-fallback-queue",
        Via::EventSource,
        "event source: fallback forwarding",
    ),
    g(
        "replicator",
        "sqs:GetQueueAttributes",
        "own-fallback-queue",
        Via::EventSource,
        "event source: fallback forwarding",
    ),
    g(
        "replicator",
        "sqs:GetQueueUrl",
        "own-fallback-queue",
        Via::EventSource,
        "event source (CDK grantConsumeMessages)",
    ),
    g(
        "replicator",
        "sqs:ReceiveMessage",
        "own-inbound-queue",
        Via::Standalone(QUEUE),
        "the standalone replicator polls",
    ),
    g(
        "replicator",
        "sqs:DeleteMessage",
        "own-inbound-queue",
        Via::Standalone(QUEUE),
        "the standalone replicator polls",
    ),
    g(
        "replicator",
        "sqs:ChangeMessageVisibility",
        "own-inbound-queue",
        Via::Standalone(QUEUE),
        "the standalone replicator releases a message",
    ),
    g(
        "replicator",
        "kms:Decrypt",
        "own-queue-key",
        Via::QueueEncryption,
        "receive from the encrypted inbound and fallback queues",
    ),
    g(
        "replicator",
        "kms:GenerateDataKey",
        "own-queue-key",
        Via::QueueEncryption,
        "send to the encrypted DLQ",
    ),
    g(
        "replicator",
        "kms:GenerateDataKey",
        "peer-queue-key",
        Via::QueueEncryption,
        "send to the peer's encrypted inbound queue",
    ),
    g(
        "replicator",
        "kms:Decrypt",
        "peer-queue-key",
        Via::QueueEncryption,
        "send to the peer's encrypted inbound queue (data key reuse)",
    ),
    g(
        "replicator",
        "secretsmanager:GetSecretValue",
        "replication-key",
        Via::Sdk(LIB),
        "open replication events",
    ),
    g(
        "replicator",
        "dynamodb:GetItem",
        "state-table",
        Via::Sdk(STATE),
        "high-water marks and attempt counts",
    ),
    g(
        "replicator",
        "dynamodb:PutItem",
        "state-table",
        Via::Sdk(STATE),
        "high-water marks and attempt counts",
    ),
    g(
        "replicator",
        "logs:CreateLogStream",
        "own-log-group",
        Via::LambdaRuntime,
        "function logs and EMF metrics",
    ),
    g(
        "replicator",
        "logs:PutLogEvents",
        "own-log-group",
        Via::LambdaRuntime,
        "function logs and EMF metrics",
    ),
    // ------------------------------------------------------------------ auth-trigger
    g(
        "auth-trigger",
        "secretsmanager:GetSecretValue",
        "bridge-key",
        Via::Sdk(LIB),
        "verify bridge assertions",
    ),
    g(
        "auth-trigger",
        "logs:CreateLogStream",
        "own-log-group",
        Via::LambdaRuntime,
        "function logs and EMF metrics",
    ),
    g(
        "auth-trigger",
        "logs:PutLogEvents",
        "own-log-group",
        Via::LambdaRuntime,
        "function logs and EMF metrics",
    ),
    // ------------------------------------------------------------------ operator (relayctl)
    g(
        "operator",
        "ssm:GetParameter",
        "drain-parameter",
        Via::Sdk(LIB),
        "relayctl status shows the drain switch",
    ),
    g(
        "operator",
        "ssm:PutParameter",
        "drain-parameter",
        Via::Sdk(LIB),
        "relayctl drain / undrain",
    ),
    g(
        "operator",
        "sqs:GetQueueAttributes",
        "own-inbound-queue",
        Via::Sdk(QUEUE),
        "relayctl status: backlog and its age",
    ),
    g(
        "operator",
        "sqs:GetQueueAttributes",
        "own-dlq",
        Via::Sdk(QUEUE),
        "relayctl status: DLQ depth",
    ),
    g(
        "operator",
        "sqs:GetQueueAttributes",
        "own-fallback-queue",
        Via::Sdk(QUEUE),
        "relayctl status: fallback backlog",
    ),
    g(
        "operator",
        "sqs:ReceiveMessage",
        "own-dlq",
        Via::Sdk(QUEUE),
        "relayctl dlq list / redrive",
    ),
    g(
        "operator",
        "sqs:DeleteMessage",
        "own-dlq",
        Via::Sdk(QUEUE),
        "relayctl dlq redrive (after the send)",
    ),
    g(
        "operator",
        "sqs:SendMessage",
        "own-inbound-queue",
        Via::Sdk(QUEUE),
        "relayctl dlq redrive",
    ),
    g(
        "operator",
        "kms:Decrypt",
        "own-queue-key",
        Via::QueueEncryption,
        "read DLQ messages; send to the inbound queue",
    ),
    g(
        "operator",
        "kms:GenerateDataKey",
        "own-queue-key",
        Via::QueueEncryption,
        "send to the inbound queue",
    ),
    g(
        "operator",
        "cloudwatch:GetMetricData",
        "all-metrics",
        Via::Sdk(RELAYCTL_CLOUDWATCH),
        "relayctl status (Lambda deployment) and the failover/failback lag check: lag p99, lost, fallback, throttles, bridge counters (GetMetricData has no resource-level permissions)",
    ),
    g(
        "operator",
        "route53:GetHealthCheckStatus",
        "health-checks",
        Via::Sdk(RELAYCTL_HEALTH),
        "relayctl failover / failback wait for Route 53's view of the regions to flip",
    ),
    g(
        "operator",
        "cognito-idp:ListUsers",
        "own-pool",
        Via::Sdk(COGNITO),
        "relayctl reconcile / backfill: read the pool page by page, find a user by alias",
    ),
    g(
        "operator",
        "cognito-idp:AdminGetUser",
        "own-pool",
        Via::Sdk(COGNITO),
        "relayctl reconcile / backfill: a user that already exists",
    ),
    g(
        "operator",
        "cognito-idp:AdminCreateUser",
        "own-pool",
        Via::Sdk(COGNITO),
        "relayctl reconcile --apply / backfill: create a missing user (message suppressed)",
    ),
    g(
        "operator",
        "cognito-idp:AdminEnableUser",
        "own-pool",
        Via::Sdk(COGNITO),
        "relayctl reconcile --apply: sign-in state as on the reference pool",
    ),
    g(
        "operator",
        "cognito-idp:AdminDisableUser",
        "own-pool",
        Via::Sdk(COGNITO),
        "relayctl reconcile --apply / backfill: a user who cannot sign in at the source",
    ),
    g(
        "operator",
        "cognito-idp:AdminUpdateUserAttributes",
        "own-pool",
        Via::Sdk(COGNITO),
        "relayctl reconcile --apply: attributes as on the reference pool",
    ),
    g(
        "operator",
        "cognito-idp:AdminDeleteUserAttributes",
        "own-pool",
        Via::Sdk(COGNITO),
        "relayctl reconcile --apply: attributes the reference pool does not have",
    ),
];

/// The roles, in export order.
pub const ROLES: &[&str] = &["proxy", "replicator", "auth-trigger", "operator"];

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The manifest as `cdk/permissions.json` holds it: per role, rows sorted by action, resource and
/// kind, one row per line.
pub fn manifest_json() -> String {
    let mut out = String::from("{\n");
    out.push_str("  \"_comment\": \"Generated from crates/aws/src/permissions.rs by its tests; do not edit.\",\n");
    out.push_str("  \"roles\": {\n");
    for (ri, role) in ROLES.iter().enumerate() {
        let mut rows: Vec<&Grant> = GRANTS.iter().filter(|g| g.role == *role).collect();
        rows.sort_by_key(|g| (g.action, g.resource, g.via.kind(), g.via.site()));
        let _ = writeln!(out, "    {}: [", json_str(role));
        for (i, r) in rows.iter().enumerate() {
            let site = match r.via {
                Via::Sdk(s) | Via::Standalone(s) => format!(", \"site\": {}", json_str(s)),
                Via::Planned(what) => format!(", \"planned\": {}", json_str(what)),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "      {{\"action\": {}, \"resource\": {}, \"via\": {}{}, \"why\": {}}}{}",
                json_str(r.action),
                json_str(r.resource),
                json_str(r.via.kind()),
                site,
                json_str(r.why),
                if i + 1 < rows.len() { "," } else { "" }
            );
        }
        let _ = writeln!(out, "    ]{}", if ri + 1 < ROLES.len() { "," } else { "" });
    }
    out.push_str("  }\n}\n");
    out
}

/// `AdminCreateUser` -> `admin_create_user` (the SDK's fluent method name).
pub fn snake_case(op: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = op.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            // A new word starts at an uppercase letter after a lowercase one, or before a
            // lowercase one after an uppercase run ("MFAPreference" -> "mfa_preference").
            let prev_lower = i > 0 && chars[i - 1].is_ascii_lowercase();
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_ascii_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(*c);
        }
    }
    out
}

/// The SDK operations a source text calls: every `<client>.<operation>()` (no arguments, the
/// fluent builder of an SDK operation) whose receiver is named `client`, ends in `_client`, or is
/// `c`, which is how the adapters hold their SDK clients (keep to that convention: the
/// completeness test only sees calls made that way).
pub fn sdk_calls(source: &str) -> Vec<String> {
    let flat: String = source.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = flat.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(pos) = flat[i..].find('.') {
        let dot = i + pos;
        i = dot + 1;
        // The receiver: the identifier just before the dot.
        let mut start = dot;
        while start > 0 && ident(bytes[start - 1]) {
            start -= 1;
        }
        let receiver = &flat[start..dot];
        if !(receiver == "client" || receiver == "c" || receiver.ends_with("_client")) {
            continue;
        }
        let name: String = flat[dot + 1..]
            .bytes()
            .take_while(|b| ident(*b))
            .map(char::from)
            .collect();
        if !name.is_empty() && flat[dot + 1 + name.len()..].starts_with("()") {
            found.push(name);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn repo_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// `cdk/permissions.json` is what the CDK app and its tests read: it must be this table.
    #[test]
    fn cdk_manifest_is_generated_from_this_table() {
        let path = repo_root().join("cdk/permissions.json");
        let want = manifest_json();
        if std::env::var_os("RELAY_WRITE_PERMISSIONS").is_some() {
            std::fs::write(&path, &want).expect("write cdk/permissions.json");
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "cdk/permissions.json is out of date: run RELAY_WRITE_PERMISSIONS=1 cargo test -p relay-aws permissions"
        );
    }

    #[test]
    fn every_sdk_row_is_called_where_it_says() {
        for g in GRANTS {
            let Some(site) = g.via.site() else { continue };
            let text = std::fs::read_to_string(repo_root().join(site))
                .unwrap_or_else(|e| panic!("{}: {site}: {e}", g.action));
            let op = g.action.split(':').nth(1).expect("service:Action");
            let call = snake_case(op);
            assert!(
                sdk_calls(&text).contains(&call),
                "{} grants {} but {site} never calls .{call}()",
                g.role,
                g.action
            );
        }
    }

    #[test]
    fn every_sdk_call_in_the_sources_has_a_row() {
        let mut scanned = 0;
        let mut missing = Vec::new();
        let crates = repo_root().join("crates");
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&crates)
            .expect("crates/")
            .filter_map(|e| e.ok().map(|e| e.path().join("src")))
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            let mut stack = vec![dir];
            while let Some(d) = stack.pop() {
                for entry in std::fs::read_dir(&d).expect("read src dir").flatten() {
                    let p = entry.path();
                    if p.is_dir() {
                        stack.push(p);
                        continue;
                    }
                    if p.extension().is_none_or(|e| e != "rs") {
                        continue;
                    }
                    let text = std::fs::read_to_string(&p).expect("read source");
                    if !text.contains("aws_sdk_") || p.ends_with("permissions.rs") {
                        continue;
                    }
                    scanned += 1;
                    let rel = p
                        .strip_prefix(repo_root())
                        .expect("under the repo")
                        .to_string_lossy()
                        .replace("/crates/../", "/");
                    let rel = rel.trim_start_matches("./").to_string();
                    for call in sdk_calls(&text) {
                        let claimed = GRANTS.iter().any(|g| {
                            g.via.site().is_some_and(|s| rel.ends_with(s))
                                && g.action.split(':').nth(1).map(snake_case).as_deref()
                                    == Some(call.as_str())
                        });
                        if !claimed {
                            missing.push(format!("{rel}: .{call}()"));
                        }
                    }
                }
            }
        }
        assert!(scanned >= 5, "scanned {scanned} files that use an AWS SDK");
        assert!(
            missing.is_empty(),
            "SDK calls without a row in GRANTS: {missing:?}"
        );
    }

    #[test]
    fn the_scanner_finds_fluent_calls_and_ignores_other_sends() {
        let src = "let o = self\n    .client\n    .admin_get_user()\n    .user_pool_id(&p).send().await?;\n\
                   let r = http.get(url).send().await;\n\
                   c.admin_delete_user().username(u.into()).send();\n\
                   tx.send(true); abc.client_id();";
        assert_eq!(
            sdk_calls(src),
            vec![
                "admin_get_user".to_string(),
                "admin_delete_user".to_string()
            ]
        );
        assert_eq!(
            snake_case("AdminSetUserMFAPreference"),
            "admin_set_user_mfa_preference"
        );
        assert_eq!(snake_case("GetQueueAttributes"), "get_queue_attributes");
    }

    #[test]
    fn rows_are_unique_and_roles_known() {
        let mut seen = std::collections::HashSet::new();
        for g in GRANTS {
            assert!(ROLES.contains(&g.role), "unknown role {}", g.role);
            assert!(
                seen.insert((g.role, g.action, g.resource, g.via.kind())),
                "duplicate row {g:?}"
            );
        }
    }
}
