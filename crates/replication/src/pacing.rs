//! Token buckets per Cognito quota category of the target pool, so a backlog drains at quota
//! instead of turning into a throttling storm.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    UserCreation,
    UserUpdate,
    UserAuthentication,
    UserAccountRecovery,
    UserRead,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Category::UserCreation,
        Category::UserUpdate,
        Category::UserAuthentication,
        Category::UserAccountRecovery,
        Category::UserRead,
    ];
    /// Cognito's default quotas (requests per second).
    pub fn default_rps(self) -> f64 {
        match self {
            Category::UserCreation => 50.0,
            Category::UserUpdate => 25.0,
            Category::UserAuthentication => 120.0,
            Category::UserAccountRecovery => 30.0,
            Category::UserRead => 120.0,
        }
    }
    pub fn env_name(self) -> &'static str {
        match self {
            Category::UserCreation => "RELAY_QUOTA_USER_CREATION",
            Category::UserUpdate => "RELAY_QUOTA_USER_UPDATE",
            Category::UserAuthentication => "RELAY_QUOTA_USER_AUTHENTICATION",
            Category::UserAccountRecovery => "RELAY_QUOTA_USER_ACCOUNT_RECOVERY",
            Category::UserRead => "RELAY_QUOTA_USER_READ",
        }
    }
}

struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// Takes one token, or says how long to wait for it.
    fn take(&mut self, now: Instant) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

pub struct Pacer {
    buckets: HashMap<Category, Mutex<Bucket>>,
}

impl Pacer {
    /// `rates` per category in requests per second (a rate ≤ 0 means unlimited). The burst is
    /// a tenth of a second's worth (at least 1): a bucket that refilled while every worker was
    /// backing off must not release a whole second of quota at once, which a quota enforced
    /// over a sliding second would throttle.
    pub fn new(rates: &HashMap<Category, f64>) -> Self {
        let now = Instant::now();
        let buckets = rates
            .iter()
            .filter(|(_, r)| **r > 0.0)
            .map(|(c, r)| {
                let burst = (r / 10.0).max(1.0);
                (
                    *c,
                    Mutex::new(Bucket {
                        rate: *r,
                        burst,
                        tokens: burst,
                        last: now,
                    }),
                )
            })
            .collect();
        Self { buckets }
    }

    pub fn defaults() -> Self {
        Self::new(
            &Category::ALL
                .iter()
                .map(|c| (*c, c.default_rps()))
                .collect(),
        )
    }

    pub async fn acquire(&self, category: Category) {
        let Some(bucket) = self.buckets.get(&category) else {
            return;
        };
        loop {
            let wait = bucket.lock().await.take(Instant::now());
            match wait {
                None => return,
                Some(d) => tokio::time::sleep(d).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn holds_calls_to_the_configured_rate() {
        let pacer = Pacer::new(&HashMap::from([(Category::UserUpdate, 10.0)]));
        let start = Instant::now();
        for _ in 0..30 {
            pacer.acquire(Category::UserUpdate).await;
        }
        // 1 burst token, then 29 more at 10/s = 2.9 s of (virtual) time.
        let took = start.elapsed().as_secs_f64();
        assert!((2.8..3.1).contains(&took), "took {took}");
        // Unconfigured categories are not held.
        let t = Instant::now();
        pacer.acquire(Category::UserCreation).await;
        assert_eq!(t.elapsed(), Duration::ZERO);
    }
}
