//! `placement-cli`: demo data, the cross-region placement scenario, readiness checks.

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use placement_cli::{
    clients::{Clients, Endpoints, wait_ready},
    demo, scenario,
};

#[derive(Parser)]
#[command(version, about = "Placement Exchange command line")]
struct Cli {
    #[arg(
        long,
        env = "PLACEMENT_DIRECTORY_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    directory_url: String,
    #[arg(
        long,
        env = "PLACEMENT_CASES_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    cases_url: String,
    #[arg(
        long,
        env = "PLACEMENT_REFERRALS_URL",
        default_value = "http://127.0.0.1:50053"
    )]
    referrals_url: String,
    #[arg(
        long,
        env = "PLACEMENT_NOTIFICATIONS_URL",
        default_value = "http://127.0.0.1:50054"
    )]
    notifications_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Waits until all four services report SERVING.
    WaitReady {
        #[arg(long, default_value = "60")]
        timeout_secs: u64,
    },
    /// Loads the demo data set (idempotent).
    SeedDemo,
    /// Loads the demo data set if needed and runs the cross-region placement scenario.
    Scenario,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let endpoints = Endpoints {
        directory: cli.directory_url,
        cases: cli.cases_url,
        referrals: cli.referrals_url,
        notifications: cli.notifications_url,
    };
    match cli.command {
        Command::WaitReady { timeout_secs } => {
            wait_ready(&endpoints, Duration::from_secs(timeout_secs))
                .await
                .map_err(anyhow::Error::msg)?;
            println!("all four services are serving");
        }
        Command::SeedDemo => {
            let clients = Clients::connect(&endpoints)?;
            let data = demo::seed(&clients).await.context("loading demo data")?;
            println!(
                "demo data loaded: {} agencies, {} services",
                data.agencies.len(),
                data.services.len()
            );
        }
        Command::Scenario => {
            let clients = Clients::connect(&endpoints)?;
            let data = demo::seed(&clients).await.context("loading demo data")?;
            let outcome = scenario::run(&clients, &data).await?;
            println!(
                "\nDone: referral {} placed the children of case {} at service {}.",
                outcome.referral_id, outcome.case_id, outcome.service_id
            );
        }
    }
    Ok(())
}
