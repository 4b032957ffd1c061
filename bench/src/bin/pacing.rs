//! `pacing`: runs the replicator's real `replication::apply` over N UpdateAttributes events
//! (distinct, existing users) against an in-process fake pool that enforces a Cognito-like
//! quota: per category (UserRead for get_user, UserUpdate for the update), at most Q admitted
//! calls in any sliding 1 s window; a call over quota is answered
//! `Retryable("TooManyRequestsException")` and does not count toward the window.
//! The pacer is configured at Q for both categories (or off with `--q-pacer 0`).
//! Prints one human line and one JSON line. Bounded by a hard timeout.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use replication::pacing::{Category, Pacer};
use replication::{
    apply, ApplyConfig, ApplyError, Attr, Change, Event, MemoryStore, Step, UserDirectory,
    UserState, EVENT_VERSION,
};
use tokio::time::Instant;
use wire::seal::Keyring;

#[derive(Parser)]
struct Args {
    /// Events (one per user).
    #[arg(long, default_value_t = 2000)]
    events: usize,
    /// The fake pool's quota per category, calls per second.
    #[arg(long, default_value_t = 100.0)]
    q: f64,
    /// The pacer's rate per category (0 = pacing off).
    #[arg(long, default_value_t = 100.0)]
    q_pacer: f64,
    /// Concurrent apply tasks.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Hard limit on the run, seconds.
    #[arg(long, default_value_t = 120)]
    max_seconds: u64,
    #[arg(long, default_value = "run")]
    label: String,
}

struct Window {
    quota: usize,
    admitted: VecDeque<Instant>,
}

impl Window {
    fn admit(&mut self, now: Instant) -> bool {
        while self
            .admitted
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            self.admitted.pop_front();
        }
        if self.admitted.len() < self.quota {
            self.admitted.push_back(now);
            true
        } else {
            false
        }
    }
}

struct QuotaPool {
    users: Mutex<HashMap<String, UserState>>,
    windows: Mutex<HashMap<Category, Window>>,
    calls: AtomicU64,
    throttled: AtomicU64,
}

impl QuotaPool {
    fn gate(&self, category: Category) -> Result<(), ApplyError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let ok = self
            .windows
            .lock()
            .expect("lock")
            .get_mut(&category)
            .is_none_or(|w| w.admit(Instant::now()));
        if ok {
            Ok(())
        } else {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            Err(ApplyError::Retryable("TooManyRequestsException".into()))
        }
    }
}

impl UserDirectory for QuotaPool {
    async fn get_user(&self, key: &str) -> Result<Option<UserState>, ApplyError> {
        self.gate(Category::UserRead)?;
        Ok(self.users.lock().expect("lock").get(key).cloned())
    }
    async fn create_user(&self, _key: &str, _attributes: &[Attr]) -> Result<UserState, ApplyError> {
        Err(ApplyError::Permanent(
            "the pacing benchmark creates no users".into(),
        ))
    }
    async fn run(&self, username: &str, step: &Step) -> Result<(), ApplyError> {
        self.gate(step.category())?;
        let mut users = self.users.lock().expect("lock");
        let u = users
            .get_mut(username)
            .ok_or_else(|| ApplyError::Permanent("no such user".into()))?;
        if let Step::UpdateAttributes(attrs) = step {
            for a in attrs {
                u.attributes.retain(|x| x.name != a.name);
                u.attributes.push(a.clone());
            }
        }
        Ok(())
    }
}

fn main() {
    let args = Args::parse();
    assert!(
        args.events >= 1
            && args.events <= 100_000
            && args.concurrency >= 1
            && args.concurrency <= 256
            && args.q >= 1.0
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let users = (0..args.events)
            .map(|i| {
                let name = format!("user-{i:05}");
                (name.clone(), UserState { username: name, status: replication::UserStatus::Confirmed, enabled: true, attributes: vec![Attr { name: "name".into(), value: "old".into() }] })
            })
            .collect();
        let quota = args.q.floor() as usize;
        let windows = [Category::UserRead, Category::UserUpdate].into_iter().map(|c| (c, Window { quota, admitted: VecDeque::new() })).collect();
        let pool = Arc::new(QuotaPool { users: Mutex::new(users), windows: Mutex::new(windows), calls: AtomicU64::new(0), throttled: AtomicU64::new(0) });
        let pacer = Arc::new(Pacer::new(&HashMap::from([(Category::UserRead, args.q_pacer), (Category::UserUpdate, args.q_pacer)])));
        let events: Arc<Vec<Event>> = Arc::new(
            (0..args.events)
                .map(|i| Event {
                    v: EVENT_VERSION,
                    id: format!("evt-{i:05}"),
                    origin_region: "eu-west-1".into(),
                    origin_pool: "eu-west-1_bench".into(),
                    target_pool: "eu-central-1_bench".into(),
                    action: "UpdateUserAttributes".into(),
                    user_key: format!("user-{i:05}"),
                    origin_username: None,
                    origin_sub: None,
                    origin_time_ms: 0,
                    no_mfa: false,
                    change: Change::UpdateAttributes { attributes: vec![Attr { name: "name".into(), value: format!("new-{i}") }] },
                })
                .collect(),
        );
        let keys = Arc::new(Keyring::single("k1", [9; 32]));
        // The replicator's high-water marks, in memory (the pacing is what is measured here).
        let store = Arc::new(MemoryStore::default());
        let cfg = Arc::new(ApplyConfig::standard());
        let next = Arc::new(AtomicUsize::new(0));
        let applied = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let tasks: Vec<_> = (0..args.concurrency)
            .map(|_| {
                let (pool, pacer, events, keys, cfg, next, applied, failed, store) = (pool.clone(), pacer.clone(), events.clone(), keys.clone(), cfg.clone(), next.clone(), applied.clone(), failed.clone(), store.clone());
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(ev) = events.get(i) else { break };
                        match apply(ev, &*pool, &*store, &keys, &pacer, &cfg).await {
                            Ok(_) => applied.fetch_add(1, Ordering::Relaxed),
                            Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                })
            })
            .collect();
        let all = async {
            for t in tasks {
                let _ = t.await;
            }
        };
        let timed_out = tokio::time::timeout(Duration::from_secs(args.max_seconds), all).await.is_err();
        let elapsed = start.elapsed().as_secs_f64();
        let (applied, failed) = (applied.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
        let (calls, throttled) = (pool.calls.load(Ordering::Relaxed), pool.throttled.load(Ordering::Relaxed));
        let rate = applied as f64 / elapsed;
        println!(
            "{} pacer={}/s quota={}/s events={} concurrency={} applied={applied} failed={failed} elapsed={elapsed:.2}s rate={rate:.1}/s rate/Q={:.3} calls={calls} throttled={throttled}{}",
            args.label,
            args.q_pacer,
            args.q,
            args.events,
            args.concurrency,
            rate / args.q,
            if timed_out { " TIMED-OUT" } else { "" }
        );
        println!(
            "{}",
            serde_json::json!({
                "label": args.label, "q": args.q, "q_pacer": args.q_pacer, "events": args.events, "concurrency": args.concurrency,
                "applied": applied, "failed": failed, "elapsed_s": elapsed, "rate": rate, "rate_over_q": rate / args.q,
                "calls": calls, "throttled": throttled, "timed_out": timed_out,
            })
        );
    });
}
