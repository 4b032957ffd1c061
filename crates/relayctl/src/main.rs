//! relayctl: the SRE's CLI for cognito-relay. Works against AWS and against the local stack
//! (a region's `aws_endpoint` in the config file points at the emulator).
#![forbid(unsafe_code)]

/// Prints a line; a closed pipe (`relayctl status | head`) ends the output quietly.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

mod cloudwatch;
mod config;
mod failover;
mod health;
mod ops;
mod sync;

use clap::{Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0   OK (status: all good; failover/failback: done, or a dry run whose preflight passes)
  1   error: an AWS call failed, and so on (message on stderr)
  2   bad usage, or the config file cannot be read
  3   status: needs attention; reconcile (dry run): the pools differ
  failover / failback, by the step that stopped them:
  10  preflight: the region that is to serve is not healthy (/health, or its Route 53 check)
  11  preflight: replication events bound for it are still waiting (not acknowledged)
  12  preflight: its DLQ is not empty (not acknowledged)
  13  preflight: replication lag into it is over --max-lag-ms, or cannot be read
  14  the drain switch could not be set
  15  /health did not change within --timeout after the switch
  16  Route 53's health checks did not flip within --timeout";

#[derive(Parser)]
#[command(
    name = "relayctl",
    version,
    about = "Operate cognito-relay: status, failover/failback, drain, DLQ, reconcile, backfill",
    after_help = EXIT_CODES
)]
struct Cli {
    /// Deployment description (JSON); see README "relayctl".
    #[arg(long, env = "RELAYCTL_CONFIG", default_value = ".local/relay.json")]
    config: std::path::PathBuf,
    /// Machine-readable output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Both regions: health, drain switch, inbound backlog and lag, DLQ depth, lost events.
    /// A region without `replicator_metrics_url` (the Lambda deployment) has its lag, lost,
    /// fallback, throttles and bridge counters read from CloudWatch.
    Status {
        /// CloudWatch window, minutes.
        #[arg(long, default_value_t = 15)]
        window: u64,
    },
    /// Move traffic from the primary to the standby: preflight, drain the primary, wait for
    /// Route 53 to flip. See the exit codes below.
    #[command(after_help = EXIT_CODES)]
    Failover {
        #[command(flatten)]
        args: MoveArgs,
    },
    /// Return traffic to the primary: preflight (the standby's writes have reached it),
    /// undrain it, wait for Route 53 to see it healthy. See the exit codes below.
    #[command(after_help = EXIT_CODES)]
    Failback {
        #[command(flatten)]
        args: MoveArgs,
    },
    /// Turn the region's drain switch on: its /health answers 503 and Route 53 fails over.
    Drain { region: String },
    /// Turn the region's drain switch off.
    Undrain { region: String },
    /// Dead-letter queue of a region's inbound replication.
    Dlq {
        #[command(subcommand)]
        cmd: DlqCmd,
    },
    /// Compare two pools user by user; with --apply, repair the `--to` side.
    Reconcile {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// Repair the `--to` pool (default is a dry run).
        #[arg(long)]
        apply: bool,
    },
    /// Seed a new standby from the primary. Users arrive WITHOUT a password: they must reset it.
    Backfill {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// Progress file, so an interrupted backfill resumes where it stopped.
        #[arg(long, default_value = ".relayctl-backfill.json")]
        state: std::path::PathBuf,
        /// Users created per second (Cognito's UserCreation quota is 50 by default).
        #[arg(long, default_value_t = 40.0)]
        rate: f64,
    },
}

#[derive(clap::Args)]
struct MoveArgs {
    /// The primary region (name or role); default: the region whose role is "primary".
    #[arg(long)]
    primary: Option<String>,
    /// The standby region (name or role); default: the region whose role is "standby".
    #[arg(long)]
    standby: Option<String>,
    /// Print the plan and the preflight results as of now; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Go on although replication events bound for the serving region are still waiting.
    #[arg(long)]
    allow_backlog: bool,
    /// Go on although the serving region's DLQ is not empty.
    #[arg(long)]
    allow_dlq: bool,
    /// Highest acceptable replication lag p99 into the serving region, ms.
    #[arg(long, default_value_t = 5000.0)]
    max_lag_ms: f64,
    /// How long the preflight waits for the backlog to reach 0, seconds.
    #[arg(long, default_value_t = 60)]
    catch_up: u64,
    /// How long each wait after the switch may take (proxies, then Route 53), seconds.
    #[arg(long, default_value_t = 180)]
    timeout: u64,
    /// CloudWatch window for the lag check, minutes.
    #[arg(long, default_value_t = 15)]
    window: u64,
}

impl MoveArgs {
    fn options(self, json: bool) -> failover::Options {
        failover::Options {
            primary: self.primary,
            standby: self.standby,
            dry_run: self.dry_run,
            allow_backlog: self.allow_backlog,
            allow_dlq: self.allow_dlq,
            max_lag_ms: self.max_lag_ms,
            catch_up: std::time::Duration::from_secs(self.catch_up),
            timeout: std::time::Duration::from_secs(self.timeout),
            metrics_minutes: self.window,
            json,
        }
    }
}

#[derive(Subcommand)]
enum DlqCmd {
    /// List dead-lettered events with their reasons (no secrets, no user data).
    List {
        region: String,
        #[arg(long, default_value_t = 100)]
        max: usize,
    },
    /// Move dead-lettered events back to the inbound queue (after fixing their cause).
    Redrive {
        region: String,
        #[arg(long, default_value_t = 1000)]
        max: usize,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let cfg = match config::Deployment::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("relayctl: {e}");
            std::process::exit(2);
        }
    };
    let res = match cli.cmd {
        Cmd::Status { window } => ops::status(&cfg, window, cli.json).await,
        Cmd::Failover { args } => {
            failover::run(&cfg, failover::Move::Failover, &args.options(cli.json)).await
        }
        Cmd::Failback { args } => {
            failover::run(&cfg, failover::Move::Failback, &args.options(cli.json)).await
        }
        Cmd::Drain { region } => ops::set_drain(&cfg, &region, true, cli.json).await,
        Cmd::Undrain { region } => ops::set_drain(&cfg, &region, false, cli.json).await,
        Cmd::Dlq {
            cmd: DlqCmd::List { region, max },
        } => ops::dlq_list(&cfg, &region, max, cli.json).await,
        Cmd::Dlq {
            cmd: DlqCmd::Redrive { region, max },
        } => ops::dlq_redrive(&cfg, &region, max, cli.json).await,
        Cmd::Reconcile { from, to, apply } => {
            sync::reconcile(&cfg, &from, &to, apply, cli.json).await
        }
        Cmd::Backfill {
            from,
            to,
            state,
            rate,
        } => sync::backfill(&cfg, &from, &to, &state, rate, cli.json).await,
    };
    match res {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("relayctl: {e}");
            std::process::exit(1);
        }
    }
}
