//! `replicator`: a Lambda for an SQS event source when `AWS_LAMBDA_RUNTIME_API` is set, else a
//! standalone long-polling worker (with Prometheus `/metrics` on RELAY_METRICS_LISTEN). Only
//! wiring: configuration, the SDK configuration (built once per region), the runtime and the
//! replication key's readiness. What happens to a message is the library's (`worker`,
//! `lambda`), unit-tested there.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, LambdaEvent};
use relay_aws::forward::Forwarder;
use relay_aws::liveness::{self, dep};
use relay_aws::queue::Queues;
use relay_aws::runtime::{lambda_mode, or_exit};
use relay_aws::SdkConfig;
use replicator::lambda::{self, Route};
use replicator::worker::{self, retry_policy, Stop};
use replicator::{build, init_logging, Config, DeadLetterQueue, ProcessEnv, SqsDeadLetters};

/// Lambda init tries to read the replication key once within this budget; after a failure the
/// read is deferred to the invocations (an init failure would cost a cold start per invocation).
const INIT_BUDGET: Duration = Duration::from_secs(2);

type Replicator = replicator::Live;

/// The replicator, once its replication key has been read.
async fn connect_once(
    cfg: &Config,
    sdk: &SdkConfig,
    lambda: bool,
) -> Result<Replicator, replicator::Error> {
    let r = build(sdk, cfg.clone(), lambda).await;
    liveness::global().observe(dep::REPLICATION_KEY, &r);
    r
}

/// The replicator, retrying (with backoff, without end) until the replication key can be read.
async fn connect(cfg: &Config, sdk: &SdkConfig, lambda: bool) -> Replicator {
    use backon::Retryable;
    (|| connect_once(cfg, sdk, lambda))
        .retry(retry_policy())
        .await
        .expect("retries without end")
}

#[tokio::main]
async fn main() {
    init_logging();
    let cfg = or_exit(
        "replicator",
        2,
        Config::from_env(&ProcessEnv).map_err(|e| format!("invalid configuration: {e}")),
    );
    let lambda = lambda_mode();
    if !lambda && cfg.inbound_queue_url.is_none() {
        or_exit::<(), String>("replicator", 2, Err("invalid configuration: RELAY_INBOUND_QUEUE_URL is required for the standalone worker".into()));
    }
    // The binary's one SDK configuration for its own region (see the library's module doc for
    // which clients derive a retry-less copy of it).
    let sdk = relay_aws::sdk_config(
        &cfg.region,
        cfg.aws_endpoint.as_deref(),
        3,
        Duration::from_secs(5),
    )
    .await;
    let queues = Queues::new(&sdk);
    // Boxed: the two drivers' futures nested in main's exceed the compiler's layout depth.
    if lambda {
        Box::pin(run_lambda(cfg, sdk, queues)).await;
    } else {
        Box::pin(run_standalone(cfg, sdk, queues)).await;
    }
}

/// Standalone. From the first AWS call on nothing AWS does makes the process exit: it waits and
/// retries.
async fn run_standalone(cfg: Config, sdk: SdkConfig, queues: Queues) {
    let stop = stop_signal();
    let slot: Arc<OnceLock<Arc<Replicator>>> = Arc::new(OnceLock::new());
    if let Some(addr) = cfg.metrics_listen {
        // Bound before the first AWS call, so a waiting replicator shows what it waits for.
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => or_exit(
                "replicator",
                2,
                Err(format!(
                    "invalid configuration: cannot listen on RELAY_METRICS_LISTEN={addr}: {e}"
                )),
            ),
        };
        let slot = slot.clone();
        tokio::spawn(async move {
            let page = move || {
                let stats = slot.get().map(|r| r.stats.prometheus()).unwrap_or_default();
                async move { format!("{stats}{}", liveness::global().prometheus()) }
            };
            let app = axum::Router::new().route("/metrics", axum::routing::get(page));
            let _ = axum::serve(listener, app).await;
        });
    }
    let r = tokio::select! {
        r = connect(&cfg, &sdk, false) => Arc::new(r),
        _ = worker::stopped(stop.clone()) => return,
    };
    let _ = slot.set(r.clone());
    let url = cfg.inbound_queue_url.clone().unwrap_or_default();
    tracing::info!(queue = %url, "replicator worker polling");
    let inbound = replicator::ports::SqsInbound {
        queues: &queues,
        url: &url,
    };
    let dlq = dlq(&queues, &cfg);
    let dlq = dlq.as_ref().map(|d| d as &dyn DeadLetterQueue);
    worker::run(&r, &inbound, dlq, liveness::global(), stop).await;
}

/// Becomes true on SIGTERM or Ctrl-C.
fn stop_signal() -> Stop {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        let _ = tx.send(true);
    });
    rx
}

/// This region's DLQ over SQS, when configured.
fn dlq<'a>(queues: &'a Queues, cfg: &'a Config) -> Option<SqsDeadLetters<'a>> {
    cfg.dlq_url
        .as_deref()
        .map(|url| SqsDeadLetters { queues, url })
}

/// What every invocation shares.
struct Lambda {
    cfg: Config,
    sdk: SdkConfig,
    queues: Queues,
    /// The fallback forwarder, when this region forwards its fallback queue.
    forwarder: Option<Forwarder>,
    replicator: tokio::sync::OnceCell<Arc<Replicator>>,
}

/// The Lambda: the replication key is read at init if it can be within INIT_BUDGET, else at the
/// first invocation that needs it (fallback forwarding does not).
async fn run_lambda(cfg: Config, sdk: SdkConfig, queues: Queues) {
    let forwarder = match &cfg.forward {
        Some(f) => Some(Forwarder {
            local: queues.clone(),
            fallback_url: f.fallback_queue_url.clone(),
            peer: Queues::new(
                &relay_aws::sdk_config(
                    &f.peer_region,
                    f.peer_aws_endpoint.as_deref(),
                    2,
                    Duration::from_secs(3),
                )
                .await,
            ),
            peer_url: f.peer_queue_url.clone(),
            dlq_url: cfg.dlq_url.clone(),
            visibility: Duration::from_secs(30),
        }),
        None => None,
    };
    let replicator = tokio::sync::OnceCell::new();
    match tokio::time::timeout(INIT_BUDGET, connect_once(&cfg, &sdk, true)).await {
        Ok(Ok(r)) => {
            let _ = replicator.set(Arc::new(r));
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "replication key not read at init; reading it at the first invocation")
        }
        Err(_) => {
            liveness::global().waiting(dep::REPLICATION_KEY, "timeout at init");
            tracing::warn!("replication key not read within the init budget; reading it at the first invocation");
        }
    }
    let shared = Arc::new(Lambda {
        cfg,
        sdk,
        queues,
        forwarder,
        replicator,
    });
    let handler = service_fn(move |ev: LambdaEvent<SqsEvent>| {
        let shared = shared.clone();
        async move { Ok::<_, lambda_runtime::Error>(shared.handle(ev).await) }
    });
    if let Err(e) = lambda_runtime::run(handler).await {
        eprintln!("replicator: lambda runtime failed: {e}");
        std::process::exit(1);
    }
}

impl Lambda {
    async fn handle(&self, ev: LambdaEvent<SqsEvent>) -> SqsBatchResponse {
        let records: Vec<_> = ev.payload.records.iter().map(lambda::to_inbound).collect();
        let live = liveness::global();
        let resp = match (lambda::route(&self.cfg, &ev.payload), &self.forwarder) {
            (Route::Forward, Some(fwd)) => {
                let out = lambda::forward(&fwd.ports(), live, &records).await;
                if out.forwarded > 0 {
                    println!("{}", replicator::emf_forwarded(out.forwarded));
                }
                out.response
            }
            _ => {
                let budget = lambda::key_budget(ev.context.deadline());
                let ready = tokio::time::timeout(
                    budget,
                    self.replicator.get_or_init(|| async {
                        Arc::new(connect(&self.cfg, &self.sdk, true).await)
                    }),
                )
                .await;
                match ready {
                    Ok(r) => {
                        let dlq = dlq(&self.queues, &self.cfg);
                        let dlq = dlq.as_ref().map(|d| d as &dyn DeadLetterQueue);
                        lambda::apply(r, dlq, &records).await
                    }
                    Err(_) => lambda::not_ready(&records, budget),
                }
            }
        };
        for w in live.snapshot() {
            println!("{}", replicator::emf_waiting(&w));
        }
        resp
    }
}
