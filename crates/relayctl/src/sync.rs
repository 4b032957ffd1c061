//! reconcile (diff two pools user by user, optionally repair one side) and backfill (seed a
//! new standby from the primary, resumable and paced).

use std::collections::{BTreeMap, HashMap};

use indicatif::{ProgressBar, ProgressStyle};
use relay_aws::cognito::Pool;
use replication::pacing::{Category, Pacer};
use replication::{Attr, Step, UserDirectory, UserState};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::config::Deployment;

/// Attributes that differ per pool by nature and are never compared or copied.
const POOL_LOCAL: &[&str] = &["sub", "custom:origin_sub", "identities"];

fn key_of(u: &UserState, aliases: &[String]) -> String {
    aliases
        .iter()
        .find_map(|a| u.attr(a).map(str::to_lowercase))
        .unwrap_or_else(|| u.username.clone())
}

/// Whether the user can sign in: an unconfirmed sign-up at the origin is replicated as a
/// disabled user, and both count as "cannot sign in yet".
fn can_sign_in(u: &UserState) -> bool {
    u.enabled && u.status != "UNCONFIRMED"
}

/// The attributes that mean the same in every pool (what is compared and copied).
fn copyable(u: &UserState) -> impl Iterator<Item = &Attr> {
    u.attributes
        .iter()
        .filter(|a| !POOL_LOCAL.contains(&a.name.as_str()))
}

/// The compared attributes. A `*_verified` flag that is absent means "false" in Cognito, so
/// `false` is dropped: both forms compare equal, and a `true` on one side only is a difference.
fn attrs(u: &UserState) -> BTreeMap<String, String> {
    copyable(u)
        .filter(|a| !(a.name.ends_with("_verified") && a.value == "false"))
        .map(|a| (a.name.clone(), a.value.clone()))
        .collect()
}

fn bar(as_json: bool, msg: &str) -> ProgressBar {
    let pb = if as_json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} {pos} users [{elapsed}]").expect("template"),
    );
    pb.set_message(msg.to_owned());
    pb
}

async fn snapshot(
    pool: &Pool,
    aliases: &[String],
    pb: &ProgressBar,
) -> Result<BTreeMap<String, UserState>, String> {
    let mut out = BTreeMap::new();
    let mut token = None;
    loop {
        let (users, next) = pool.list_page(token).await?;
        for u in users {
            pb.inc(1);
            out.insert(key_of(&u, aliases), u);
        }
        if next.is_none() {
            return Ok(out);
        }
        token = next;
    }
}

#[derive(Debug, Serialize)]
struct Diff {
    key: String,
    kind: &'static str,
    detail: String,
}

/// The differences that make `b` (the `--to` pool, named `to`) unlike `a` (`from`), by user key:
/// `missing` (only in `a`), `sign_in` (can sign in on one side only), `attributes` (the
/// compared attributes differ), `extra` (only in `b`; never deleted automatically).
fn diff(
    a: &BTreeMap<String, UserState>,
    b: &BTreeMap<String, UserState>,
    from: &str,
    to: &str,
) -> Vec<Diff> {
    let mut diffs = vec![];
    for (k, u) in a {
        match b.get(k) {
            None => diffs.push(Diff {
                key: k.clone(),
                kind: "missing",
                detail: format!("not in {}", to),
            }),
            Some(v) => {
                if can_sign_in(u) != can_sign_in(v) {
                    diffs.push(Diff {
                        key: k.clone(),
                        kind: "sign_in",
                        detail: format!(
                            "can sign in: {} {} vs {} {}",
                            from,
                            can_sign_in(u),
                            to,
                            can_sign_in(v)
                        ),
                    });
                }
                let (x, y) = (attrs(u), attrs(v));
                let differing: Vec<&String> = x
                    .keys()
                    .chain(y.keys())
                    .filter(|n| x.get(*n) != y.get(*n))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                if !differing.is_empty() {
                    diffs.push(Diff {
                        key: k.clone(),
                        kind: "attributes",
                        detail: format!(
                            "differ: {}",
                            differing
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    });
                }
            }
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        diffs.push(Diff {
            key: k.clone(),
            kind: "extra",
            detail: format!("only in {} (not deleted automatically)", to),
        });
    }
    diffs
}

pub async fn reconcile(
    cfg: &Deployment,
    from: &str,
    to: &str,
    apply: bool,
    as_json: bool,
) -> Result<i32, String> {
    let (src, dst) = (cfg.region(from)?, cfg.region(to)?);
    let (sp, dp) = (src.pool().await, dst.pool().await);
    let pb = bar(as_json, &format!("reading {} and {}", src.name, dst.name));
    let a = snapshot(&sp, &src.aliases(), &pb).await?;
    let b = snapshot(&dp, &dst.aliases(), &pb).await?;
    pb.finish_and_clear();
    let diffs = diff(&a, &b, &src.name, &dst.name);
    let (mut repaired, mut failed) = (0, 0);
    if apply {
        let pb = bar(as_json, &format!("repairing {}", dst.name));
        let pacer = Pacer::defaults();
        for d in &diffs {
            let (Some(u), dst_user) = (a.get(&d.key), b.get(&d.key)) else {
                pb.inc(1);
                continue; // "extra": only in the target, never deleted automatically
            };
            let result = match (d.kind, dst_user) {
                ("missing", _) => {
                    pacer.acquire(Category::UserCreation).await;
                    let attrs: Vec<Attr> = copyable(u).cloned().collect();
                    match dp.create_user(&d.key, &attrs).await {
                        Ok(created) => {
                            dp.run(&created.username, &Step::SetEnabled(can_sign_in(u)))
                                .await
                        }
                        Err(e) => Err(e),
                    }
                }
                ("sign_in", Some(v)) => {
                    pacer.acquire(Category::UserUpdate).await;
                    dp.run(&v.username, &Step::SetEnabled(can_sign_in(u))).await
                }
                ("attributes", Some(v)) => {
                    pacer.acquire(Category::UserUpdate).await;
                    let (set, gone) = attribute_repair(u, v);
                    // A changed e-mail / phone is set with its flag "true" first, so the
                    // standby messages no one (as the replicator does).
                    let mut r = Ok(());
                    if !set.is_empty() {
                        for step in replication::apply::updates_without_a_message(&set) {
                            r = dp.run(&v.username, &step).await;
                            if r.is_err() {
                                break;
                            }
                        }
                    }
                    if r.is_ok() && !gone.is_empty() {
                        r = dp.run(&v.username, &Step::DeleteAttributes(gone)).await;
                    }
                    r
                }
                _ => Ok(()),
            };
            match result {
                Ok(()) => repaired += 1,
                Err(e) => {
                    failed += 1;
                    eprintln!("relayctl: cannot repair {} ({}): {e}", d.key, d.kind);
                }
            }
            pb.inc(1);
        }
        pb.finish_and_clear();
    }
    let counts = diffs
        .iter()
        .fold(BTreeMap::<&str, usize>::new(), |mut m, d| {
            *m.entry(d.kind).or_default() += 1;
            m
        });
    if as_json {
        out!(
            "{}",
            json!({"from": src.name, "to": dst.name, "users_from": a.len(), "users_to": b.len(), "differences": diffs, "counts": counts, "applied": apply, "repaired": repaired, "failed": failed})
        );
    } else {
        for d in &diffs {
            out!("  {:<10} {:<40} {}", d.kind, d.key, d.detail);
        }
        out!(
            "{} users in {}, {} in {}: {}",
            a.len(),
            src.name,
            b.len(),
            dst.name,
            if diffs.is_empty() {
                "pools are equal".to_owned()
            } else {
                format!("{} difference(s) {:?}", diffs.len(), counts)
            }
        );
        if apply {
            out!("repaired {repaired} in {} (users created here have no password: they must reset it)", dst.name);
            if failed > 0 {
                out!("{failed} repair(s) FAILED (see the errors above); run reconcile again");
            }
        } else if !diffs.is_empty() {
            out!(
                "dry run: nothing changed; add --apply to repair {}",
                dst.name
            );
        }
    }
    Ok(exit_code(diffs.len(), apply, failed))
}

/// reconcile's exit code: 0 when the pools are equal or every repair was made, 3 when a dry
/// run found differences, 4 when `--apply` could not make a repair.
fn exit_code(differences: usize, apply: bool, failed: usize) -> i32 {
    match (differences, apply, failed) {
        (0, _, _) => 0,
        (_, false, _) => 3,
        (_, true, 0) => 0,
        (_, true, _) => 4,
    }
}

/// What makes `v`'s compared attributes equal `u`'s: the values to set (a `*_verified` flag
/// set only on the target becomes "false": a flag cannot be deleted) and the attributes to
/// delete.
fn attribute_repair(u: &UserState, v: &UserState) -> (Vec<Attr>, Vec<String>) {
    let (x, y) = (attrs(u), attrs(v));
    let mut set: Vec<Attr> = x
        .iter()
        .filter(|(n, v)| y.get(*n) != Some(v))
        .map(|(n, v)| Attr {
            name: n.clone(),
            value: v.clone(),
        })
        .collect();
    set.extend(
        y.keys()
            .filter(|n| !x.contains_key(*n) && n.ends_with("_verified"))
            .map(|n| Attr {
                name: n.clone(),
                value: "false".into(),
            }),
    );
    // A changed e-mail / phone carries the source's flag (absent meaning "false"), so that the
    // repair can set the value without a message and then the flag.
    for base in ["email", "phone_number"] {
        let flag = format!("{base}_verified");
        if set.iter().any(|a| a.name == base) && !set.iter().any(|a| a.name == flag) {
            set.push(Attr {
                value: x.get(&flag).cloned().unwrap_or_else(|| "false".into()),
                name: flag,
            });
        }
    }
    let gone = y
        .keys()
        .filter(|n| !x.contains_key(*n) && !n.ends_with("_verified"))
        .cloned()
        .collect();
    (set, gone)
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct BackfillState {
    from_pool: String,
    to_pool: String,
    next_token: Option<String>,
    pages_done: u64,
    seen: u64,
    created: u64,
    finished: bool,
}

pub async fn backfill(
    cfg: &Deployment,
    from: &str,
    to: &str,
    state_path: &std::path::Path,
    rate: f64,
    as_json: bool,
) -> Result<i32, String> {
    let (src, dst) = (cfg.region(from)?, cfg.region(to)?);
    let (sp, dp) = (src.pool().await, dst.pool().await);
    let mut st: BackfillState = match std::fs::read_to_string(state_path) {
        Ok(t) => serde_json::from_str(&t)
            .map_err(|e| format!("{} is not a backfill state file: {e}", state_path.display()))?,
        Err(_) => BackfillState {
            from_pool: src.user_pool_id.clone(),
            to_pool: dst.user_pool_id.clone(),
            ..Default::default()
        },
    };
    if st.from_pool != src.user_pool_id || st.to_pool != dst.user_pool_id {
        return Err(format!(
            "{} belongs to another backfill ({} → {}); remove it to start over",
            state_path.display(),
            st.from_pool,
            st.to_pool
        ));
    }
    if st.finished {
        // A finished backfill runs again from the start (creating only what is still missing).
        st = BackfillState {
            from_pool: st.from_pool,
            to_pool: st.to_pool,
            ..Default::default()
        };
    }
    let pacer = Pacer::new(&HashMap::from([
        (Category::UserCreation, rate),
        (Category::UserRead, 100.0),
        (Category::UserUpdate, 20.0),
    ]));
    let pb = bar(as_json, &format!("backfilling {} → {}", src.name, dst.name));
    pb.set_position(st.seen);
    loop {
        let (users, next) = sp.list_page(st.next_token.clone()).await?;
        for u in &users {
            let key = key_of(u, &src.aliases());
            pacer.acquire(Category::UserRead).await;
            if dp
                .get_user(&key)
                .await
                .map_err(|e| e.to_string())?
                .is_none()
            {
                pacer.acquire(Category::UserCreation).await;
                let attrs: Vec<Attr> = copyable(u).cloned().collect();
                let created = dp
                    .create_user(&key, &attrs)
                    .await
                    .map_err(|e| e.to_string())?;
                if !can_sign_in(u) {
                    pacer.acquire(Category::UserUpdate).await;
                    dp.run(&created.username, &Step::SetEnabled(false))
                        .await
                        .map_err(|e| e.to_string())?;
                }
                st.created += 1;
            }
            st.seen += 1;
            pb.inc(1);
        }
        st.pages_done += 1;
        st.next_token = next;
        st.finished = st.next_token.is_none();
        std::fs::write(
            state_path,
            serde_json::to_string_pretty(&st).unwrap_or_default(),
        )
        .map_err(|e| format!("cannot save progress to {}: {e}", state_path.display()))?;
        if st.finished {
            break;
        }
    }
    pb.finish_and_clear();
    if as_json {
        out!(
            "{}",
            json!({"from": src.name, "to": dst.name, "seen": st.seen, "created": st.created})
        );
    } else {
        out!(
            "backfill {} → {}: {} users seen, {} created.",
            src.name,
            dst.name,
            st.seen,
            st.created
        );
        out!("Users created by backfill have NO password on {}: after a failover they must reset it (an operator runs AdminResetUserPassword, or they use 'forgot password' once their e-mail is verified).", dst.name);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(list: &[(&str, &str)]) -> UserState {
        UserState {
            username: "u".into(),
            status: "CONFIRMED".into(),
            enabled: true,
            attributes: list
                .iter()
                .map(|(n, v)| Attr {
                    name: (*n).into(),
                    value: (*v).into(),
                })
                .collect(),
        }
    }

    /// key, enabled, status, attributes
    type Row<'a> = (&'a str, bool, &'a str, &'a [(&'a str, &'a str)]);

    fn pool(users: &[Row<'_>]) -> BTreeMap<String, UserState> {
        users
            .iter()
            .map(|(key, enabled, status, list)| {
                let mut u = user(list);
                u.username = format!("id-{key}");
                u.enabled = *enabled;
                u.status = (*status).into();
                ((*key).to_owned(), u)
            })
            .collect()
    }

    fn kinds(diffs: &[Diff]) -> Vec<(&str, &str)> {
        diffs.iter().map(|d| (d.key.as_str(), d.kind)).collect()
    }

    #[test]
    fn equal_pools_have_no_difference_whatever_is_pool_local() {
        let a = pool(&[(
            "a@x.io",
            true,
            "CONFIRMED",
            &[("email", "a@x.io"), ("sub", "1")],
        )]);
        let b = pool(&[(
            "a@x.io",
            true,
            "CONFIRMED",
            &[
                ("email", "a@x.io"),
                ("sub", "2"),
                ("custom:origin_sub", "1"),
                ("email_verified", "false"),
            ],
        )]);
        assert!(diff(&a, &b, "A", "B").is_empty());
        assert_eq!(exit_code(0, false, 0), 0);
        assert_eq!(exit_code(0, true, 0), 0);
    }

    #[test]
    fn every_kind_of_difference_is_found_once_per_user() {
        let a = pool(&[
            ("only-a", true, "CONFIRMED", &[]),
            ("disabled-b", true, "CONFIRMED", &[("name", "Ada")]),
            ("drifted", true, "CONFIRMED", &[("name", "Ada")]),
            ("unconfirmed-a", true, "UNCONFIRMED", &[]),
        ]);
        let b = pool(&[
            ("disabled-b", false, "CONFIRMED", &[("name", "Ada")]),
            ("drifted", true, "CONFIRMED", &[("name", "Grace")]),
            ("unconfirmed-a", false, "CONFIRMED", &[]),
            ("only-b", true, "CONFIRMED", &[]),
        ]);
        let d = diff(&a, &b, "A", "B");
        assert_eq!(
            kinds(&d),
            vec![
                ("disabled-b", "sign_in"),
                ("drifted", "attributes"),
                ("only-a", "missing"),
                ("only-b", "extra"),
            ],
            "an unconfirmed origin user and a disabled target user both cannot sign in: equal"
        );
        assert_eq!(d[0].detail, "can sign in: A true vs B false");
        assert_eq!(d[1].detail, "differ: name");
        assert_eq!(
            exit_code(d.len(), false, 0),
            3,
            "a dry run with differences"
        );
        assert_eq!(exit_code(d.len(), true, 0), 0, "every repair made");
        assert_eq!(exit_code(d.len(), true, 1), 4, "a repair failed");
    }

    #[test]
    fn attribute_repair_sets_deletes_and_unverifies_what_the_origin_does_not_have() {
        let origin = user(&[("email", "a@x.io"), ("name", "Ada"), ("sub", "1")]);
        let target = user(&[
            ("email", "old@x.io"),
            ("locale", "fr"),
            ("email_verified", "true"),
            ("sub", "2"),
            ("name", "Ada"),
        ]);
        let (set, gone) = attribute_repair(&origin, &target);
        let set: Vec<(&str, &str)> = set
            .iter()
            .map(|a| (a.name.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(set, vec![("email", "a@x.io"), ("email_verified", "false")]);
        assert_eq!(
            gone,
            vec!["locale".to_owned()],
            "sub is pool-local: never touched"
        );
        assert_eq!(attribute_repair(&origin, &origin), (vec![], vec![]));
    }

    #[test]
    fn a_changed_address_is_repaired_without_a_message_to_the_user() {
        use replication::apply::{updates_without_a_message, Step};
        let names = |step: &Step| match step {
            Step::UpdateAttributes(a) => a
                .iter()
                .map(|a| format!("{}={}", a.name, a.value))
                .collect::<Vec<_>>(),
            other => panic!("unexpected step {other:?}"),
        };
        // Verified on both sides, the address differs: one call, with the flag "true".
        let origin = user(&[("email", "new@x.io"), ("email_verified", "true")]);
        let target = user(&[("email", "old@x.io"), ("email_verified", "true")]);
        let (set, _) = attribute_repair(&origin, &target);
        let steps = updates_without_a_message(&set);
        assert_eq!(steps.len(), 1);
        assert_eq!(names(&steps[0]), ["email=new@x.io", "email_verified=true"]);
        // Unverified at the origin: the value with "true" (no message), then the origin's flag.
        let origin = user(&[("email", "new@x.io")]);
        let (set, _) = attribute_repair(&origin, &target);
        let steps = updates_without_a_message(&set);
        assert_eq!(
            steps.iter().map(names).collect::<Vec<_>>(),
            [
                vec!["email=new@x.io", "email_verified=true"],
                vec!["email_verified=false"]
            ]
        );
    }

    #[test]
    fn the_user_key_is_the_alias_lowercased_or_the_username() {
        let mut u = user(&[("email", "Ada@X.io")]);
        u.username = "uuid-1".into();
        assert_eq!(key_of(&u, &["email".into()]), "ada@x.io");
        assert_eq!(key_of(&u, &[]), "uuid-1");
        assert_eq!(key_of(&u, &["phone_number".into()]), "uuid-1");
    }

    #[test]
    fn verified_flags_are_compared_absent_meaning_false() {
        let origin = user(&[("email", "a@x.io")]);
        assert_eq!(
            attrs(&origin),
            attrs(&user(&[("email", "a@x.io"), ("email_verified", "false")]))
        );
        assert_ne!(
            attrs(&origin),
            attrs(&user(&[("email", "a@x.io"), ("email_verified", "true")])),
            "verified only on the standby is a difference"
        );
        assert_ne!(
            attrs(&user(&[("phone_number_verified", "true")])),
            attrs(&user(&[]))
        );
    }
}
