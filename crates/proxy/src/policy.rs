//! Sign-up policy: declarative fraud rules evaluated before a SignUp (or an attribute change of
//! the sign-in e-mail / phone) reaches Cognito. A refusal is answered exactly as Cognito answers
//! a PreSignUp trigger rejection (`UserLambdaValidationException`, "PreSignUp failed with error
//! <message>"), so apps show the message unchanged. Rules live in one JSON document (inline, a
//! file or an SSM parameter), validated at startup and re-read without a restart; a rejected
//! reload keeps the rules in force. Dry-run mode only counts what it would refuse.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use wire::WireError;

use crate::ports::RateLimiter;

/// Why a policy could not be loaded. Names the rule (field) or the source.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("policy rule {rule}: {why}")]
    Rule { rule: String, why: String },
    #[error("policy document is not valid: {0}")]
    Document(String),
    #[error("policy source {source_name}: {why}")]
    Source { source_name: String, why: String },
}

fn rule_err(rule: impl Into<String>, why: impl Into<String>) -> PolicyError {
    PolicyError::Rule {
        rule: rule.into(),
        why: why.into(),
    }
}

/// The policy document. Every field is optional; an empty document refuses nothing.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDoc {
    /// Only count what would be refused (metrics and logs), forward everything.
    #[serde(default)]
    pub dry_run: bool,
    /// E-mail domains refused (a subdomain of a listed domain is refused too).
    #[serde(default)]
    pub blocked_email_domains: Vec<String>,
    /// When non-empty, only these e-mail domains (and their subdomains) may sign up.
    #[serde(default)]
    pub allowed_email_domains: Vec<String>,
    /// A regular expression the whole `Username` of a SignUp must match.
    #[serde(default)]
    pub username_pattern: Option<String>,
    /// Attribute name → regular expression the whole value must match (when the attribute is sent).
    #[serde(default)]
    pub attribute_patterns: BTreeMap<String, String>,
    /// Attributes a SignUp must carry (non-empty).
    #[serde(default)]
    pub required_attributes: Vec<String>,
    /// Sign-ups per caller IP per minute (0 = no limit).
    #[serde(default)]
    pub signups_per_ip_per_minute: u32,
    /// Sign-ups per e-mail domain per minute (0 = no limit).
    #[serde(default)]
    pub signups_per_email_domain_per_minute: u32,
    /// Message per rule kind, shown to the user after "PreSignUp failed with error ".
    #[serde(default)]
    pub messages: BTreeMap<String, String>,
}

/// The rule kinds, as named in metrics, logs and `messages`.
pub const RULES: [&str; 8] = [
    "blocked_email_domain",
    "disposable_email_domain",
    "allowed_email_domains",
    "username_pattern",
    "attribute_pattern",
    "required_attribute",
    "signups_per_ip",
    "signups_per_email_domain",
];

fn default_message(rule: &str) -> &'static str {
    match rule {
        "blocked_email_domain" | "disposable_email_domain" | "allowed_email_domains" => {
            "This e-mail domain cannot be used to sign up."
        }
        "username_pattern" => "This username is not allowed.",
        "attribute_pattern" => "An attribute value is not allowed.",
        "required_attribute" => "A required attribute is missing.",
        _ => "Too many sign-up attempts; try again later.",
    }
}

/// A compiled, validated policy.
#[derive(Debug, Default)]
pub struct Policy {
    pub dry_run: bool,
    blocked: HashSet<String>,
    disposable: HashSet<String>,
    allowed: HashSet<String>,
    username: Option<regex_lite::Regex>,
    attributes: Vec<(String, regex_lite::Regex)>,
    required: Vec<String>,
    per_ip: u32,
    per_domain: u32,
    messages: BTreeMap<String, String>,
}

fn domain_entry(rule: &str, d: &str) -> Result<String, PolicyError> {
    let d = d
        .trim()
        .trim_start_matches('@')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if d.is_empty() || d.contains(['@', ' ', '/', ',']) {
        return Err(rule_err(rule, format!("{d:?} is not a domain")));
    }
    Ok(d)
}

fn anchored(rule: &str, pattern: &str) -> Result<regex_lite::Regex, PolicyError> {
    regex_lite::Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| rule_err(rule, format!("bad regular expression: {e}")))
}

impl Policy {
    /// Validates and compiles a document (JSON text) plus an optional disposable-domain list
    /// (one domain per line, `#` comments).
    pub fn compile(doc: &str, disposable: Option<&str>) -> Result<Self, PolicyError> {
        let value: Value =
            serde_json::from_str(doc).map_err(|e| PolicyError::Document(e.to_string()))?;
        let Some(fields) = value.as_object() else {
            return Err(PolicyError::Document(
                "the policy must be a JSON object".into(),
            ));
        };
        // Field by field first, so that an error names the rule it is about.
        for (name, v) in fields {
            if let Err(e) = serde_json::from_value::<PolicyDoc>(serde_json::json!({ name: v })) {
                return Err(rule_err(name.clone(), e.to_string()));
            }
        }
        let doc: PolicyDoc =
            serde_json::from_value(value).map_err(|e| PolicyError::Document(e.to_string()))?;
        let blocked = doc
            .blocked_email_domains
            .iter()
            .map(|d| domain_entry("blocked_email_domains", d))
            .collect::<Result<_, _>>()?;
        let allowed = doc
            .allowed_email_domains
            .iter()
            .map(|d| domain_entry("allowed_email_domains", d))
            .collect::<Result<_, _>>()?;
        let disposable = match disposable {
            None => HashSet::new(),
            Some(text) => text
                .lines()
                .map(|l| l.split('#').next().unwrap_or("").trim())
                .filter(|l| !l.is_empty())
                .map(|d| domain_entry("disposable_email_domain", d))
                .collect::<Result<_, _>>()?,
        };
        let username = doc
            .username_pattern
            .as_deref()
            .map(|p| anchored("username_pattern", p))
            .transpose()?;
        let attributes = doc
            .attribute_patterns
            .iter()
            .map(|(name, p)| {
                Ok((
                    name.clone(),
                    anchored(&format!("attribute_patterns.{name}"), p)?,
                ))
            })
            .collect::<Result<_, PolicyError>>()?;
        if let Some(bad) = doc.required_attributes.iter().find(|a| a.trim().is_empty()) {
            return Err(rule_err(
                "required_attributes",
                format!("{bad:?} is not an attribute name"),
            ));
        }
        if let Some(unknown) = doc.messages.keys().find(|k| !RULES.contains(&k.as_str())) {
            return Err(rule_err(
                format!("messages.{unknown}"),
                format!("not a rule kind (one of {})", RULES.join(", ")),
            ));
        }
        Ok(Self {
            dry_run: doc.dry_run,
            blocked,
            disposable,
            allowed,
            username,
            attributes,
            required: doc.required_attributes,
            per_ip: doc.signups_per_ip_per_minute,
            per_domain: doc.signups_per_email_domain_per_minute,
            messages: doc.messages,
        })
    }

    fn message(&self, rule: &str) -> String {
        self.messages
            .get(rule)
            .cloned()
            .unwrap_or_else(|| default_message(rule).to_owned())
    }
}

/// What a policy refused (or, in dry-run, would have refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: &'static str,
    pub message: String,
    /// The e-mail domain concerned, if any (never the address).
    pub domain: Option<String>,
}

impl Violation {
    /// The error Cognito answers when a PreSignUp trigger rejects a sign-up.
    pub fn to_wire(&self) -> WireError {
        WireError::new(
            400,
            wire::ErrorKind::UserLambdaValidation,
            format!("PreSignUp failed with error {}", self.message),
        )
    }
}

/// The attributes of a request as (name, value) pairs.
fn attributes(body: &Value) -> Vec<(&str, &str)> {
    body.get("UserAttributes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| {
                    Some((
                        x.get("Name")?.as_str()?,
                        x.get("Value")?.as_str().unwrap_or(""),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The lower-cased domain of an e-mail address.
pub fn email_domain(address: &str) -> Option<String> {
    let (_, d) = address.trim().rsplit_once('@')?;
    let d = d.trim_end_matches('.').to_ascii_lowercase();
    (!d.is_empty()).then_some(d)
}

/// Whether `domain` is `listed` or one of its subdomains.
fn listed(set: &HashSet<String>, domain: &str) -> bool {
    let mut d = domain;
    loop {
        if set.contains(d) {
            return true;
        }
        match d.split_once('.') {
            Some((_, rest)) if !rest.is_empty() => d = rest,
            _ => return false,
        }
    }
}

/// Which requests the policy looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    SignUp,
    /// UpdateUserAttributes changing `email` or `phone_number`.
    SignInAttributeChange,
}

pub fn subject(action: &str, body: &Value) -> Option<Subject> {
    match action {
        "SignUp" => Some(Subject::SignUp),
        "UpdateUserAttributes"
            if attributes(body)
                .iter()
                .any(|(n, _)| *n == "email" || *n == "phone_number") =>
        {
            Some(Subject::SignInAttributeChange)
        }
        _ => None,
    }
}

impl Policy {
    /// The rules that need no counting, in a fixed order; the first violation wins.
    pub fn check(&self, subject: Subject, body: &Value) -> Result<Option<String>, Violation> {
        let attrs = attributes(body);
        let username = body.get("Username").and_then(Value::as_str).unwrap_or("");
        let email = attrs
            .iter()
            .find(|(n, _)| *n == "email")
            .map(|(_, v)| *v)
            .or_else(|| (subject == Subject::SignUp && username.contains('@')).then_some(username));
        let domain = email.and_then(email_domain);
        let refuse = |rule: &'static str| Violation {
            rule,
            message: self.message(rule),
            domain: domain.clone(),
        };
        if let Some(d) = &domain {
            if listed(&self.blocked, d) {
                return Err(refuse("blocked_email_domain"));
            }
            if listed(&self.disposable, d) {
                return Err(refuse("disposable_email_domain"));
            }
            if !self.allowed.is_empty() && !listed(&self.allowed, d) {
                return Err(refuse("allowed_email_domains"));
            }
        } else if email.is_some() && (!self.allowed.is_empty()) {
            return Err(refuse("allowed_email_domains"));
        }
        if subject == Subject::SignUp {
            if let Some(re) = &self.username {
                if !re.is_match(username) {
                    return Err(refuse("username_pattern"));
                }
            }
            let present = |r: &String| {
                attrs
                    .iter()
                    .any(|(n, v)| *n == r.as_str() && !v.trim().is_empty())
                    || (r == "email" && email.is_some())
            };
            if !self.required.iter().all(present) {
                return Err(refuse("required_attribute"));
            }
        }
        for (name, re) in &self.attributes {
            if attrs
                .iter()
                .any(|(n, v)| *n == name.as_str() && !re.is_match(v))
            {
                return Err(refuse("attribute_pattern"));
            }
        }
        Ok(domain)
    }

    /// The counted rules (sign-ups only), on the shared `RateLimiter` port.
    pub async fn count(
        &self,
        limiter: &dyn RateLimiter,
        ip: Option<&str>,
        domain: Option<&str>,
    ) -> Result<(), Violation> {
        if let (Some(ip), n @ 1..) = (ip, self.per_ip) {
            if !limiter.allow(&format!("signup-ip:{ip}"), n).await {
                return Err(Violation {
                    rule: "signups_per_ip",
                    message: self.message("signups_per_ip"),
                    domain: domain.map(str::to_owned),
                });
            }
        }
        if let (Some(d), n @ 1..) = (domain, self.per_domain) {
            if !limiter.allow(&format!("signup-domain:{d}"), n).await {
                return Err(Violation {
                    rule: "signups_per_email_domain",
                    message: self.message("signups_per_email_domain"),
                    domain: Some(d.to_owned()),
                });
            }
        }
        Ok(())
    }
}

/// Where the document (or the disposable list) is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Inline(String),
    File(String),
    Ssm(String),
}

impl Source {
    /// `file:<path>`, `ssm:<parameter name>`, or the text itself.
    pub fn parse(v: &str) -> Self {
        if let Some(p) = v.strip_prefix("file:") {
            Source::File(p.to_owned())
        } else if let Some(p) = v.strip_prefix("ssm:") {
            Source::Ssm(p.to_owned())
        } else {
            Source::Inline(v.to_owned())
        }
    }
    fn name(&self) -> String {
        match self {
            Source::Inline(_) => "inline".into(),
            Source::File(p) => format!("file:{p}"),
            Source::Ssm(p) => format!("ssm:{p}"),
        }
    }
    fn reloadable(&self) -> bool {
        !matches!(self, Source::Inline(_))
    }
}

/// Reads a source's current text.
pub trait Fetch: Send + Sync {
    fn fetch<'a>(
        &'a self,
        source: &'a Source,
    ) -> crate::ports::BoxFut<'a, Result<String, PolicyError>>;
}

/// Files from disk, parameters from SSM (when a client is given).
pub struct Fetcher(pub Option<aws_sdk_ssm::Client>);

impl Fetch for Fetcher {
    fn fetch<'a>(
        &'a self,
        source: &'a Source,
    ) -> crate::ports::BoxFut<'a, Result<String, PolicyError>> {
        Box::pin(async move {
            let fail = |why: String| PolicyError::Source {
                source_name: source.name(),
                why,
            };
            match source {
                Source::Inline(t) => Ok(t.clone()),
                Source::File(p) => tokio::fs::read_to_string(p)
                    .await
                    .map_err(|e| fail(e.to_string())),
                Source::Ssm(name) => {
                    let client = self
                        .0
                        .as_ref()
                        .ok_or_else(|| fail("no SSM client".into()))?;
                    let out = client
                        .get_parameter()
                        .name(name)
                        .with_decryption(true)
                        .send()
                        .await
                        .map_err(|e| fail(relay_aws::describe(&e)))?;
                    out.parameter
                        .and_then(|p| p.value)
                        .ok_or_else(|| fail("the parameter has no value".into()))
                }
            }
        })
    }
}

/// Policy settings from the environment.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    pub document: Source,
    pub disposable: Option<Source>,
    pub reload: Duration,
}

impl PolicyConfig {
    /// `RELAY_POLICY` (JSON, `file:` or `ssm:`), `RELAY_POLICY_DISPOSABLE_DOMAINS` (`file:` or
    /// `ssm:`, one domain a line), `RELAY_POLICY_RELOAD_MS` (default 30 000). None when unset.
    pub fn from_args(a: &crate::config::PolicyArgs) -> Result<Option<Self>, crate::Error> {
        let Some(doc) = a.document.as_deref() else {
            if a.disposable.is_some() {
                return Err(crate::Error::Config("RELAY_POLICY_DISPOSABLE_DOMAINS needs RELAY_POLICY (use RELAY_POLICY={} for no other rule)".into()));
            }
            return Ok(None);
        };
        Ok(Some(Self {
            document: Source::parse(doc),
            disposable: a.disposable.as_deref().map(Source::parse),
            reload: Duration::from_millis(a.reload_ms),
        }))
    }
}

/// Refusal counters per rule and mode.
#[derive(Default)]
pub struct PolicyMetrics {
    counts: Mutex<BTreeMap<(&'static str, bool), u64>>,
    pub reload_failures: AtomicU64,
}

impl PolicyMetrics {
    fn count(&self, rule: &'static str, dry_run: bool) {
        *self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((rule, dry_run))
            .or_default() += 1;
    }
    pub fn prometheus(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::from("# TYPE relay_policy_refusals_total counter\n");
        for ((rule, dry), n) in self.counts.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                s,
                "relay_policy_refusals_total{{rule=\"{rule}\",mode=\"{}\"}} {n}",
                if *dry { "dry_run" } else { "enforce" }
            );
        }
        let _ = writeln!(s, "# TYPE relay_policy_reload_failures_total counter\nrelay_policy_reload_failures_total {}", self.reload_failures.load(Relaxed));
        s
    }
}

/// The policy in force, re-read from its source at most once per `reload` interval (in the
/// background of the request that notices it is due; the request does not wait).
pub struct PolicyHandle {
    cfg: PolicyConfig,
    fetch: Arc<dyn Fetch>,
    current: RwLock<Arc<Policy>>,
    checked: Mutex<Instant>,
    reloading: AtomicBool,
    pub metrics: PolicyMetrics,
}

async fn load(cfg: &PolicyConfig, fetch: &dyn Fetch) -> Result<Policy, PolicyError> {
    let doc = fetch.fetch(&cfg.document).await?;
    let disposable = match &cfg.disposable {
        Some(s) => Some(fetch.fetch(s).await?),
        None => None,
    };
    Policy::compile(&doc, disposable.as_deref())
}

impl PolicyHandle {
    /// Loads and validates the policy; an error names the rule or source (startup exits 2).
    pub async fn load(cfg: PolicyConfig, fetch: Arc<dyn Fetch>) -> Result<Arc<Self>, PolicyError> {
        let policy = load(&cfg, &*fetch).await?;
        Ok(Arc::new(Self {
            cfg,
            fetch,
            current: RwLock::new(Arc::new(policy)),
            checked: Mutex::new(Instant::now()),
            reloading: AtomicBool::new(false),
            metrics: PolicyMetrics::default(),
        }))
    }

    pub fn current(&self) -> Arc<Policy> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Re-reads the sources now; a document that does not validate leaves the policy in force.
    pub async fn reload(&self) -> Result<(), PolicyError> {
        match load(&self.cfg, &*self.fetch).await {
            Ok(p) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(p);
                Ok(())
            }
            Err(e) => {
                self.metrics.reload_failures.fetch_add(1, Relaxed);
                tracing::warn!(error = %e, "policy reload refused; the previous rules stay in force");
                Err(e)
            }
        }
    }

    fn reload_if_due(self: &Arc<Self>) {
        let reloadable = self.cfg.document.reloadable()
            || self.cfg.disposable.as_ref().is_some_and(Source::reloadable);
        if !reloadable {
            return;
        }
        {
            let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
            if checked.elapsed() < self.cfg.reload || self.reloading.swap(true, Relaxed) {
                return;
            }
            *checked = Instant::now();
        }
        let me = self.clone();
        tokio::spawn(async move {
            let _ = me.reload().await;
            me.reloading.store(false, Relaxed);
        });
    }

    /// Evaluates the policy for a request (any action; only subjects are looked at).
    pub async fn evaluate(
        self: &Arc<Self>,
        action: &str,
        body: &Value,
        ip: Option<&str>,
        limiter: &dyn RateLimiter,
    ) -> Verdict {
        self.reload_if_due();
        let Some(subject) = subject(action, body) else {
            return Verdict::Pass;
        };
        let policy = self.current();
        let verdict = match policy.check(subject, body) {
            Err(v) => Err(v),
            Ok(domain) if subject == Subject::SignUp => {
                policy.count(limiter, ip, domain.as_deref()).await
            }
            Ok(_) => Ok(()),
        };
        let Err(v) = verdict else {
            return Verdict::Pass;
        };
        self.metrics.count(v.rule, policy.dry_run);
        // The domain only: the address itself is personal data.
        tracing::info!(
            rule = v.rule,
            email_domain = v.domain.as_deref().unwrap_or(""),
            dry_run = policy.dry_run,
            "sign-up policy {}",
            if policy.dry_run {
                "would refuse"
            } else {
                "refused"
            }
        );
        if policy.dry_run {
            Verdict::DryRun(v.rule)
        } else {
            Verdict::Refuse(v.rule, v.to_wire())
        }
    }
}

/// The outcome of evaluating the policy for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Dry-run: the rule would have refused; the request goes on.
    DryRun(&'static str),
    /// Refused by the rule, with the error to answer.
    Refuse(&'static str, WireError),
}

/// Lambda: one EMF line per refusal (metric `PolicyRefusals`, dimensions Rule and Mode).
pub fn emf_refusal(rule: &str, dry_run: bool) -> String {
    use relay_aws::telemetry::{names, Emf, Unit};
    Emf::new(&[&["Rule", "Mode"], &[]])
        .with("Rule", rule)
        .with("Mode", if dry_run { "dry_run" } else { "enforce" })
        .metric(names::POLICY_REFUSALS, Unit::Count, 1)
        .line()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::LocalLimiter;
    use serde_json::json;

    fn signup(username: &str, email: Option<&str>) -> Value {
        let mut attrs = vec![json!({"Name": "name", "Value": "Ada"})];
        if let Some(e) = email {
            attrs.push(json!({"Name": "email", "Value": e}));
        }
        json!({"ClientId": "c", "Username": username, "Password": "p", "UserAttributes": attrs})
    }

    #[test]
    fn an_empty_document_refuses_nothing() {
        let p = Policy::compile("{}", None).unwrap();
        assert_eq!(
            p.check(Subject::SignUp, &signup("a@mailinator.com", None)),
            Ok(Some("mailinator.com".into()))
        );
    }

    #[test]
    fn domains_blocked_disposable_and_allowed() {
        let p = Policy::compile(
            r#"{"blocked_email_domains":["Evil.example"]}"#,
            Some("# list\nmailinator.com\n\nyopmail.com # comment\n"),
        )
        .unwrap();
        let rule = |b: &Value| p.check(Subject::SignUp, b).err().map(|v| v.rule);
        assert_eq!(
            rule(&signup("u1", Some("x@evil.example"))),
            Some("blocked_email_domain")
        );
        assert_eq!(
            rule(&signup("u1", Some("x@mx.EVIL.example"))),
            Some("blocked_email_domain"),
            "subdomains too"
        );
        assert_eq!(
            rule(&signup("x@mailinator.com", None)),
            Some("disposable_email_domain"),
            "an e-mail username counts"
        );
        assert_eq!(rule(&signup("u1", Some("x@notevil.example"))), None);
        let v = p
            .check(Subject::SignUp, &signup("u1", Some("x@yopmail.com")))
            .unwrap_err();
        assert_eq!(v.to_wire().kind, "UserLambdaValidationException");
        assert_eq!(
            v.to_wire().message,
            "PreSignUp failed with error This e-mail domain cannot be used to sign up."
        );
        assert_eq!(v.domain.as_deref(), Some("yopmail.com"));

        let p = Policy::compile(r#"{"allowed_email_domains":["corp.example"],"messages":{"allowed_email_domains":"Use your work address."}}"#, None).unwrap();
        assert!(p
            .check(Subject::SignUp, &signup("u", Some("a@corp.example")))
            .is_ok());
        let v = p.check(Subject::SignInAttributeChange, &json!({"AccessToken":"t","UserAttributes":[{"Name":"email","Value":"a@gmail.com"}]})).unwrap_err();
        assert_eq!(
            v.to_wire().message,
            "PreSignUp failed with error Use your work address."
        );
    }

    #[test]
    fn patterns_and_required_attributes() {
        let p = Policy::compile(r#"{"username_pattern":"[a-z0-9_]{3,20}","attribute_patterns":{"phone_number":"\\+44[0-9]{10}"},"required_attributes":["name","email"]}"#, None).unwrap();
        let rule = |b: &Value| p.check(Subject::SignUp, b).err().map(|v| v.rule);
        assert_eq!(rule(&signup("ok_name", Some("a@b.example"))), None);
        assert_eq!(
            rule(&signup("No Spaces", Some("a@b.example"))),
            Some("username_pattern"),
            "anchored: the whole username must match"
        );
        assert_eq!(rule(&signup("ok_name", None)), Some("required_attribute"));
        let mut b = signup("ok_name", Some("a@b.example"));
        b["UserAttributes"]
            .as_array_mut()
            .unwrap()
            .push(json!({"Name":"phone_number","Value":"+15550100"}));
        assert_eq!(rule(&b), Some("attribute_pattern"));
    }

    #[test]
    fn only_sign_ups_and_sign_in_attribute_changes_are_subjects() {
        assert_eq!(subject("SignUp", &json!({})), Some(Subject::SignUp));
        assert_eq!(
            subject(
                "UpdateUserAttributes",
                &json!({"UserAttributes":[{"Name":"name","Value":"x"}]})
            ),
            None
        );
        assert_eq!(
            subject(
                "UpdateUserAttributes",
                &json!({"UserAttributes":[{"Name":"phone_number","Value":"x"}]})
            ),
            Some(Subject::SignInAttributeChange)
        );
        assert_eq!(subject("InitiateAuth", &json!({})), None);
    }

    #[test]
    fn bad_rules_are_named() {
        let err = |d: &str| Policy::compile(d, None).unwrap_err().to_string();
        assert!(err(r#"{"username_pattern":"(["}"#).contains("username_pattern"));
        assert!(err(r#"{"attribute_patterns":{"email":"*"}}"#).contains("attribute_patterns.email"));
        assert!(err(r#"{"blocked_email_domains":["a b"]}"#).contains("blocked_email_domains"));
        assert!(
            err(r#"{"blocked_domains":[]}"#).contains("blocked_domains"),
            "unknown fields are named"
        );
        assert!(err(r#"{"messages":{"nope":"x"}}"#).contains("messages.nope"));
        assert!(err(r#"{"signups_per_ip_per_minute":-1}"#).contains("signups_per_ip_per_minute"));
        assert!(Policy::compile("{}", Some("ok.example\nnot a domain\n"))
            .unwrap_err()
            .to_string()
            .contains("disposable_email_domain"));
    }

    struct Files(Mutex<String>);
    impl Fetch for Files {
        fn fetch<'a>(
            &'a self,
            _: &'a Source,
        ) -> crate::ports::BoxFut<'a, Result<String, PolicyError>> {
            let t = self.0.lock().unwrap().clone();
            Box::pin(async move { Ok(t) })
        }
    }

    #[tokio::test]
    async fn counted_rules_dry_run_and_reload() {
        let files = Arc::new(Files(Mutex::new(
            r#"{"signups_per_email_domain_per_minute":2,"dry_run":true}"#.into(),
        )));
        let cfg = PolicyConfig {
            document: Source::File("p.json".into()),
            disposable: None,
            reload: Duration::from_secs(3600),
        };
        let h = PolicyHandle::load(cfg, files.clone()).await.unwrap();
        let limiter = LocalLimiter::default();
        let b = signup("u", Some("a@same.example"));
        for _ in 0..2 {
            assert_eq!(
                h.evaluate("SignUp", &b, Some("10.0.0.1"), &limiter).await,
                Verdict::Pass
            );
        }
        assert_eq!(
            h.evaluate("SignUp", &b, Some("10.0.0.1"), &limiter).await,
            Verdict::DryRun("signups_per_email_domain"),
            "dry run only counts"
        );
        assert!(h.metrics.prometheus().contains(
            r#"relay_policy_refusals_total{rule="signups_per_email_domain",mode="dry_run"} 1"#
        ));

        *files.0.lock().unwrap() = r#"{"blocked_email_domains":["same.example"]}"#.into();
        h.reload().await.unwrap();
        let Verdict::Refuse(rule, e) = h.evaluate("SignUp", &b, None, &limiter).await else {
            panic!("not refused")
        };
        assert_eq!(
            (rule, e.kind.as_str()),
            ("blocked_email_domain", "UserLambdaValidationException")
        );

        *files.0.lock().unwrap() = r#"{"username_pattern":"("}"#.into();
        assert!(h.reload().await.is_err());
        assert!(
            matches!(
                h.evaluate("SignUp", &b, None, &limiter).await,
                Verdict::Refuse(..)
            ),
            "a bad reload keeps the rules in force"
        );
        assert!(h
            .metrics
            .prometheus()
            .contains("relay_policy_reload_failures_total 1"));
    }
}
