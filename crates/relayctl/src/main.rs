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

mod config;
mod ops;
mod sync;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "relayctl",
    version,
    about = "Operate cognito-relay: status, drain, DLQ, reconcile, backfill"
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
    Status,
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
        Cmd::Status => ops::status(&cfg, cli.json).await,
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
