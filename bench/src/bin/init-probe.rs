//! `init-probe`: where the proxy's cold init goes. Times, in a fresh process, the steps the
//! `proxy` binary takes before it polls the Lambda Runtime API: the tokio runtime, logging,
//! `Config::from_env`, one `relay_aws::sdk_config` load (the AWS SDK config), a bare
//! `reqwest::Client` (TLS roots), and the whole `proxy::build` (which does both of those and
//! builds the SDK clients) — then prints one JSON line (ms) and exits. No network I/O.

use std::time::Instant;

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let t = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let runtime_ms = ms(t);
    rt.block_on(async {
        let t = Instant::now();
        proxy::init_logging();
        let logging_ms = ms(t);
        let t = Instant::now();
        let cfg = proxy::Config::from_env(&proxy::ProcessEnv).expect("RELAY_* configuration");
        let config_ms = ms(t);
        let t = Instant::now();
        let _sdk = relay_aws::sdk_config(&cfg.region, cfg.aws_endpoint.as_deref(), 3, std::time::Duration::from_secs(3)).await;
        let sdk_config_ms = ms(t);
        let t = Instant::now();
        let _client = reqwest::Client::builder().build().expect("client");
        let reqwest_client_ms = ms(t);
        let t = Instant::now();
        let sdk = proxy::Sdk::load(&cfg).await;
        let _state = proxy::build(cfg, &sdk, true).await.expect("build");
        let build_ms = ms(t);
        println!(
            "{}",
            serde_json::json!({ "runtime_ms": runtime_ms, "logging_ms": logging_ms, "config_ms": config_ms, "sdk_config_first_ms": sdk_config_ms, "reqwest_client_ms": reqwest_client_ms, "proxy_build_after_warm_ms": build_ms })
        );
    });
}
