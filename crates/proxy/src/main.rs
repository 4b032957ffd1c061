//! `proxy`: runs as a Lambda when `AWS_LAMBDA_RUNTIME_API` is set, else as a standalone server.

use proxy::{build, config::Config, init_logging, ProcessEnv};
use relay_aws::runtime::{lambda_mode, or_exit};

// glibc malloc's arena locks showed up as ~10 % of the proxy's CPU at saturation (perf); mimalloc
// keeps per-thread heaps.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // RELAY_WORKER_THREADS: 0 = one thread (current-thread runtime), N = N workers. Default: one
    // thread under Lambda (one request at a time per instance), one worker per core standalone.
    // Read before the runtime exists; the rest of the config is validated in `run`.
    let workers = match std::env::var("RELAY_WORKER_THREADS") {
        Ok(v) => Some(or_exit(
            "proxy",
            2,
            v.trim().parse::<usize>().map_err(|_| {
                format!("invalid configuration: RELAY_WORKER_THREADS={v:?} is not a number")
            }),
        )),
        Err(_) if lambda_mode() => Some(0),
        Err(_) => None,
    };
    let runtime = match workers {
        Some(0) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    or_exit(
        "proxy",
        2,
        runtime.map_err(|e| format!("cannot start the runtime: {e}")),
    )
    .block_on(run());
}

async fn run() {
    init_logging();
    let cfg = or_exit(
        "proxy",
        2,
        Config::from_env(&ProcessEnv).map_err(|e| format!("invalid configuration: {e}")),
    );
    let lambda = lambda_mode();
    // The process's SDK configurations, loaded once: the app's clients and the forwarder share them.
    let sdk = proxy::Sdk::load(&cfg).await;
    let state = or_exit("proxy", 2, build(cfg.clone(), &sdk, lambda).await);
    let router = proxy::app(state.clone());
    if lambda {
        // Cognito's JSON content type is not one lambda_http knows as text; without this it
        // would base64 the body, and API Gateway would pass the base64 on to the app.
        let router = router.layer(axum::middleware::map_response(
            |mut r: axum::response::Response| async move {
                r.headers_mut().insert(
                    "x-lambda-http-content-encoding",
                    axum::http::HeaderValue::from_static("text"),
                );
                r
            },
        ));
        if let Err(e) = lambda_http::run(router).await {
            eprintln!("proxy: lambda runtime failed: {e}");
            std::process::exit(1);
        }
        return;
    }
    // Standalone: what needs AWS is retried in the background; the server starts regardless and
    // answers 503s (with /health saying why) until the secrets are in.
    {
        let state = state.clone();
        tokio::spawn(async move { state.secrets.warm().await });
    }
    if let Some(forwarder) = proxy::fallback_forwarder(&cfg, &sdk) {
        tokio::spawn(forwarder.run(
            std::time::Duration::from_secs(5),
            relay_aws::liveness::global(),
        ));
    }
    let listener = match tokio::net::TcpListener::bind(cfg.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("proxy: cannot listen on {}: {e}", cfg.listen);
            std::process::exit(2);
        }
    };
    tracing::info!(listen = %cfg.listen, region = %cfg.region, "proxy listening");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler");
        tokio::select! { _ = shutdown => {}, _ = term.recv() => {} }
    };
    // Header/body timeouts and connection caps: proxy::serve.
    drop(router);
    proxy::serve::serve(listener, state, shutdown).await;
}
