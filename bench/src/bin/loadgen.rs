//! `loadgen`: an HTTP/1.1 keep-alive load generator for the proxy benchmarks.
//!
//! * fixed rate (`--rate R`, open loop): request i is *intended* at `start + i/R`, spread over
//!   the connections round-robin. Latency counts from the intended time whenever the
//!   connection was still busy with an earlier answer at that time (the server made it wait:
//!   no coordinated omission); when the connection was idle it counts from the actual send,
//!   so the generator's own timer lateness (tokio sleeps have ~1 ms granularity) is not
//!   charged to the server.
//! * saturation (`--rate 0`, closed loop): every connection sends its next request as soon as
//!   the previous answer arrived; latency from the send.
//!
//! Bounded: it stops sending at `--duration`, gives in-flight requests `--timeout-ms`, and
//! aborts everything at duration + 15 s. Prints one human line and, with `--json`, one JSON
//! line.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

#[derive(Parser, Clone)]
struct Args {
    /// Target address (host:port).
    #[arg(long)]
    addr: SocketAddr,
    /// Open connections (keep-alive).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Requests per second in total; 0 = saturation (closed loop).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Seconds of load (warm-up included).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds at the start whose requests are not measured.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Per-request timeout.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// Tokio worker threads (0 = a current-thread runtime).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// A label echoed in the output.
    #[arg(long, default_value = "run")]
    label: String,
    /// Also print one JSON line.
    #[arg(long)]
    json: bool,
    /// The Cognito action to send: InitiateAuth (USER_PASSWORD_AUTH) or SignUp.
    #[arg(long, default_value = "InitiateAuth")]
    action: String,
}

const BODY: &str = r#"{"AuthFlow":"USER_PASSWORD_AUTH","ClientId":"pub","AuthParameters":{"USERNAME":"u","PASSWORD":"Passw0rd!"}}"#;

const SIGN_UP_BODY: &str = r#"{"ClientId":"pub","Username":"new_user_1","Password":"Passw0rd!","UserAttributes":[{"Name":"email","Value":"new.user@example.com"},{"Name":"name","Value":"Ada"}]}"#;

fn request_bytes(addr: SocketAddr, action: &str) -> Vec<u8> {
    let body = if action == "SignUp" {
        SIGN_UP_BODY
    } else {
        BODY
    };
    format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: AWSCognitoIdentityProviderService.{action}\r\nUser-Agent: cognito-relay-loadgen\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends one request and reads one response (Content-Length bodies only); returns the status.
async fn exchange(stream: &mut TcpStream, req: &[u8], buf: &mut Vec<u8>) -> io::Result<u16> {
    stream.write_all(req).await?;
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    let (head_end, content_length) = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head =
                std::str::from_utf8(&buf[..pos]).map_err(|_| io::Error::other("non-UTF-8 head"))?;
            let mut cl = None;
            for line in head.split("\r\n").skip(1) {
                if let Some((k, v)) = line.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        cl = v.trim().parse::<usize>().ok();
                    } else if k.eq_ignore_ascii_case("transfer-encoding") {
                        return Err(io::Error::other("chunked answers are not supported"));
                    }
                }
            }
            break (
                pos + 4,
                cl.ok_or_else(|| io::Error::other("no content-length"))?,
            );
        }
        if buf.len() > 1 << 20 {
            return Err(io::Error::other("head too large"));
        }
    };
    while buf.len() < head_end + content_length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed mid-body",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let status = buf
        .get(9..12)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(status)
}

#[derive(Default)]
struct ConnResult {
    /// (intended offset from start in µs, latency in µs) of measured, successful requests.
    samples: Vec<(u64, u64)>,
    /// Completion offsets (µs) of measured, successful requests.
    last_done_us: u64,
    errors: u64,
    non_2xx: u64,
}

async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

async fn run_connection(k: usize, args: Args, start: Instant) -> ConnResult {
    let req = request_bytes(args.addr, &args.action);
    let mut buf = Vec::with_capacity(8 * 1024);
    let mut out = ConnResult::default();
    let duration = Duration::from_secs_f64(args.duration);
    let warmup = Duration::from_secs_f64(args.warmup);
    let timeout = Duration::from_millis(args.timeout_ms);
    let mut stream = connect(args.addr).await.ok();
    let mut prev_done = start;
    let max_requests: u64 = if args.rate > 0.0 {
        (args.rate * args.duration) as u64 + 1
    } else {
        50_000_000
    };
    for j in 0..max_requests {
        let intended = if args.rate > 0.0 {
            let offset = Duration::from_secs_f64(
                (k as f64 + j as f64 * args.connections as f64) / args.rate,
            );
            if offset >= duration {
                break;
            }
            let at = start + offset;
            if Instant::now() < at {
                tokio::time::sleep_until(at).await;
            }
            at
        } else {
            let now = Instant::now();
            if now >= start + duration {
                break;
            }
            now
        };
        let sent = Instant::now();
        // Open loop: if we were still busy when this request was due, the wait is the
        // server's doing and counts; otherwise count from the actual send.
        let from = if args.rate > 0.0 && prev_done > intended {
            intended
        } else {
            sent
        };
        if stream.is_none() {
            stream = connect(args.addr).await.ok();
        }
        let Some(s) = stream.as_mut() else {
            out.errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let result = tokio::time::timeout(timeout, exchange(s, &req, &mut buf)).await;
        let done = Instant::now();
        prev_done = done;
        let measured = intended.duration_since(start) >= warmup;
        match result {
            Ok(Ok(status)) if (200..300).contains(&status) => {
                if measured {
                    out.samples.push((
                        intended.duration_since(start).as_micros() as u64,
                        done.duration_since(from).as_micros() as u64,
                    ));
                    out.last_done_us = out
                        .last_done_us
                        .max(done.duration_since(start).as_micros() as u64);
                }
            }
            Ok(Ok(_)) => {
                if measured {
                    out.non_2xx += 1;
                }
            }
            _ => {
                if measured {
                    out.errors += 1;
                }
                stream = None;
            }
        }
    }
    out
}

fn main() {
    let args = Args::parse();
    assert!(
        args.connections >= 1 && args.connections <= 1024,
        "--connections must be 1..=1024"
    );
    assert!(
        args.duration > args.warmup && args.duration <= 300.0,
        "--duration must exceed --warmup and be at most 300 s"
    );
    let rt = if args.threads == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .expect("runtime");
    let results: Vec<ConnResult> = rt.block_on(async {
        let start = Instant::now() + Duration::from_millis(50);
        let tasks: Vec<_> = (0..args.connections)
            .map(|k| tokio::spawn(run_connection(k, args.clone(), start)))
            .collect();
        let hard_stop = Duration::from_secs_f64(args.duration + 15.0);
        let mut out = Vec::new();
        let deadline = Instant::now() + hard_stop;
        for t in tasks {
            let abort = t.abort_handle();
            match tokio::time::timeout_at(deadline, t).await {
                Ok(Ok(r)) => out.push(r),
                _ => {
                    abort.abort();
                    out.push(ConnResult {
                        errors: 1,
                        ..Default::default()
                    });
                }
            }
        }
        out
    });
    let mut lat: Vec<u64> = results
        .iter()
        .flat_map(|r| r.samples.iter().map(|s| s.1))
        .collect();
    lat.sort_unstable();
    let errors: u64 = results.iter().map(|r| r.errors).sum();
    let non_2xx: u64 = results.iter().map(|r| r.non_2xx).sum();
    let warmup_us = (args.warmup * 1e6) as u64;
    let window_us = if args.rate > 0.0 {
        results
            .iter()
            .map(|r| r.last_done_us)
            .max()
            .unwrap_or(0)
            .saturating_sub(warmup_us)
            .max(1)
    } else {
        ((args.duration - args.warmup) * 1e6) as u64
    };
    let achieved = lat.len() as f64 / (window_us as f64 / 1e6);
    let ms = |us: u64| us as f64 / 1000.0;
    let (p50, p90, p99, p999, max) = (
        bench::quantile(&lat, 0.5),
        bench::quantile(&lat, 0.9),
        bench::quantile(&lat, 0.99),
        bench::quantile(&lat, 0.999),
        lat.last().copied().unwrap_or(0),
    );
    let mode = if args.rate > 0.0 {
        "fixed-rate"
    } else {
        "saturation"
    };
    println!(
        "{} {mode} conns={} target={} ok={} errors={errors} non2xx={non_2xx} rate={achieved:.0}/s p50={:.3}ms p90={:.3}ms p99={:.3}ms p99.9={:.3}ms max={:.3}ms",
        args.label,
        args.connections,
        if args.rate > 0.0 { format!("{}/s", args.rate) } else { "max".into() },
        lat.len(),
        ms(p50),
        ms(p90),
        ms(p99),
        ms(p999),
        ms(max)
    );
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "label": args.label, "mode": mode, "connections": args.connections, "target_rate": args.rate,
                "duration_s": args.duration, "warmup_s": args.warmup, "ok": lat.len(), "errors": errors, "non_2xx": non_2xx,
                "rate": achieved, "p50_ms": ms(p50), "p90_ms": ms(p90), "p99_ms": ms(p99), "p999_ms": ms(p999), "max_ms": ms(max),
            })
        );
    }
}
