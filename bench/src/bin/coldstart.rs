//! `coldstart`: Lambda cold-init time of a relay binary. Runs a tiny fake Lambda Runtime API
//! (and a fake Secrets Manager, which the replicator reads at init) on loopback, spawns the
//! binary `--runs` times with `AWS_LAMBDA_RUNTIME_API` pointing at it, and times spawn → the
//! arrival of its first `GET /2018-06-01/runtime/invocation/next`. The child is then killed.
//! Every other environment variable (RELAY_*, AWS credentials) is inherited from the caller.
//!
//! `--probe` instead runs a binary that prints one JSON line of phase timings and exits
//! (`init-probe`), and reports the median of each phase.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// The binary to start.
    #[arg(long)]
    binary: String,
    #[arg(long, default_value_t = 20)]
    runs: usize,
    #[arg(long, default_value = "proxy")]
    label: String,
    /// Serve a fake Secrets Manager and point RELAY_AWS_ENDPOINT at it.
    #[arg(long)]
    fake_secrets: bool,
    /// The binary prints phase timings (JSON) and exits; aggregate them.
    #[arg(long)]
    probe: bool,
}

/// Reads one HTTP request (head + Content-Length body); returns the request line.
fn read_request(r: &mut BufReader<TcpStream>) -> Option<String> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut cl = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        if h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                cl = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; cl.min(1 << 20)];
    r.read_exact(&mut body).ok()?;
    Some(line.trim_end().to_owned())
}

fn fake_secrets_manager(listener: TcpListener) {
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let secret = serde_json::json!({ "current": "k1", "keys": { "k1": key } }).to_string();
    let body = serde_json::json!({
        "ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:cognito-relay/replication-key-AbCdEf",
        "Name": "cognito-relay/replication-key", "VersionId": "v1", "SecretString": secret, "CreatedDate": 1.7e9,
    })
    .to_string();
    for conn in listener.incoming().flatten() {
        let body = body.clone();
        std::thread::spawn(move || {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
            let mut w = conn.try_clone().expect("clone");
            let mut r = BufReader::new(conn);
            for _ in 0..100 {
                if read_request(&mut r).is_none() {
                    break;
                }
                let resp = format!("HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-RequestId: 1\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                if w.write_all(resp.as_bytes()).is_err() {
                    break;
                }
            }
        });
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

fn main() {
    let args = Args::parse();
    assert!(args.runs >= 1 && args.runs <= 200);
    let mut env: Vec<(String, String)> = vec![];
    if args.fake_secrets {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        env.push((
            "RELAY_AWS_ENDPOINT".into(),
            format!("http://{}", l.local_addr().expect("addr")),
        ));
        std::thread::spawn(move || fake_secrets_manager(l));
    }

    if args.probe {
        let mut phases: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut walls = vec![];
        for _ in 0..args.runs {
            let t0 = Instant::now();
            let out = Command::new(&args.binary)
                .envs(env.iter().cloned())
                .stderr(Stdio::null())
                .output()
                .expect("spawn probe");
            walls.push(t0.elapsed().as_secs_f64() * 1e3);
            let text = String::from_utf8_lossy(&out.stdout);
            let Some(v) = text
                .lines()
                .rev()
                .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            else {
                eprintln!("probe printed no JSON: {text}");
                continue;
            };
            for (k, x) in v.as_object().into_iter().flatten() {
                if let Some(x) = x.as_f64() {
                    phases.entry(k.clone()).or_default().push(x);
                }
            }
        }
        let mut out = serde_json::Map::new();
        out.insert("label".into(), args.label.clone().into());
        out.insert("spawn_to_exit_ms_p50".into(), median(&mut walls).into());
        for (k, mut v) in phases {
            out.insert(format!("{k}_p50"), median(&mut v).into());
        }
        println!("{}", serde_json::Value::Object(out));
        return;
    }

    let runtime = TcpListener::bind("127.0.0.1:0").expect("bind");
    let runtime_addr = runtime.local_addr().expect("addr");
    let (tx, rx) = mpsc::channel::<(Instant, String, TcpStream)>();
    std::thread::spawn(move || {
        for conn in runtime.incoming().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let keep = conn.try_clone().expect("clone");
                let mut r = BufReader::new(conn);
                if let Some(line) = read_request(&mut r) {
                    // Timestamped when the whole request head has arrived.
                    let _ = tx.send((Instant::now(), line, keep));
                }
            });
        }
    });

    let mut times = vec![];
    let mut failures = 0;
    for run in 0..args.runs {
        while rx.try_recv().is_ok() {}
        let t0 = Instant::now();
        let mut child = Command::new(&args.binary)
            .envs(env.iter().cloned())
            .env("AWS_LAMBDA_RUNTIME_API", runtime_addr.to_string())
            .env(
                "AWS_LAMBDA_FUNCTION_NAME",
                format!("cognito-relay-{}", args.label),
            )
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                format!("2026/01/01/[1]bench{run}"),
            )
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/cognito-relay-{}", args.label),
            )
            .env("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let deadline = t0 + Duration::from_secs(10);
        let mut got = None;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok((at, line, _conn))
                    if line.starts_with("GET /2018-06-01/runtime/invocation/next") =>
                {
                    got = Some(at.duration_since(t0));
                    break;
                }
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        match got {
            Some(d) => times.push(d.as_secs_f64() * 1e3),
            None => failures += 1,
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| {
        if times.is_empty() {
            0.0
        } else {
            times[((p * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1]
        }
    };
    println!(
        "{} cold init (spawn -> first /invocation/next): runs={} failures={failures} p50={:.1}ms p90={:.1}ms max={:.1}ms min={:.1}ms",
        args.label,
        times.len(),
        q(0.5),
        q(0.9),
        q(1.0),
        times.first().copied().unwrap_or(0.0)
    );
    println!(
        "{}",
        serde_json::json!({ "label": args.label, "runs": times.len(), "failures": failures, "p50_ms": q(0.5), "p90_ms": q(0.9), "max_ms": q(1.0), "min_ms": times.first().copied().unwrap_or(0.0) })
    );
}
