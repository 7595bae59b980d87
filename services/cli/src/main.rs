//! `placement-cli`: demo data, the cross-region placement scenario, readiness checks.

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use placement_cli::{
    clients::{Clients, Endpoints, as_agency, wait_ready},
    demo, devkeys, scenario,
    sign_in::{self, SignInSettings},
};
use placement_platform::caller::Role;
use placement_platform::services::Listed;
use placement_proto::v1::{
    DeliveryStatus, GetStatusRequest, ListDeadLettersRequest, ListDeliveriesRequest,
    ReplayDeadLettersRequest, RetryDeliveryRequest, operator_service_client::OperatorServiceClient,
};

#[derive(Parser)]
#[command(version, about = "Placement Exchange command line")]
struct Cli {
    /// Where a service is, as NAME=URL (repeat the flag), e.g. `--url referrals=https://10.0.0.5:50053`;
    /// otherwise `PLACEMENT_<NAME>_URL`, otherwise its default address on this machine.
    #[arg(long = "url", value_name = "NAME=URL", value_parser = parse_service_url)]
    urls: Vec<(Listed, String)>,
    /// Folder with the development signing key (made by `dev-keys`): requests carry tokens signed with it.
    /// Without it, requests name their agency with `x-agency-id` (development mode only).
    #[arg(long, env = "PLACEMENT_DEV_KEYS")]
    dev_keys: Option<std::path::PathBuf>,
    /// The identity provider to sign in at (its issuer URL). Requests then carry its access tokens: a
    /// machine's, by the client-credentials grant with PLACEMENT_CLI_CLIENT_SECRET (read from the
    /// environment only); else a person's, from `sign-in`.
    #[arg(long, env = "PLACEMENT_CLI_ISSUER")]
    issuer: Option<String>,
    /// This program's registration at the identity provider.
    #[arg(long, env = "PLACEMENT_CLI_CLIENT_ID", default_value = sign_in::DEFAULT_CLIENT_ID)]
    client_id: String,
    /// The resource indicator (RFC 8707) the tokens are asked for.
    #[arg(long, env = "PLACEMENT_CLI_RESOURCE", default_value = sign_in::DEFAULT_RESOURCE)]
    resource: String,
    /// Where a person's tokens are kept (mode 0600); by default
    /// `$XDG_CACHE_HOME/placement-cli/tokens.json`, else `~/.cache/placement-cli/tokens.json`.
    #[arg(long, env = "PLACEMENT_CLI_TOKEN_CACHE")]
    token_cache: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Makes development credentials in a folder, unless they are there: a token-signing key and its JWKS
    /// (for PLACEMENT_AUTH_JWKS_FILE), a data key (PLACEMENT_DATA_KEY), and a CA with a certificate for the
    /// services and one for clients (PLACEMENT_TLS_*). Prints the JWKS path.
    DevKeys {
        #[arg(long)]
        dir: std::path::PathBuf,
    },
    /// Prints a development token for an agency (with --dev-keys).
    MintToken {
        #[arg(long)]
        agency: uuid::Uuid,
        /// caseworker, supervisor, directory_admin, operator or integration (repeat the flag); the demo's
        /// defaults when absent.
        #[arg(long = "role")]
        roles: Vec<String>,
        #[arg(long, default_value = "3600")]
        ttl_secs: u64,
    },
    /// Signs a person in at the identity provider (--issuer) by the device flow: open the address shown,
    /// enter the code, sign in there; the tokens are kept for the next commands and refreshed.
    SignIn,
    /// Forgets the tokens kept for the identity provider (--issuer) and client.
    SignOut,
    /// Prints every service of the exchange, one per line: its name and default port (for scripts).
    Services,
    /// Waits until every service reports SERVING.
    WaitReady {
        #[arg(long, default_value = "60")]
        timeout_secs: u64,
    },
    /// Loads the demo data set (idempotent).
    SeedDemo,
    /// Loads the demo data set if needed and runs the cross-region placement scenario.
    Scenario,
    /// Loads the demo data set if needed and prints the demo's people as accounts of the demo's OpenID
    /// provider (JSON, `{"<login>": {"agency_id", "roles"}}`), for the web app's sign-in.
    DemoAccounts,
    /// Each service's dependencies, outbox backlog, queue depth and dead letters.
    Status,
    /// Lists the dead letters of one service, or of every service.
    DeadLetters {
        /// directory, cases, referrals or notifications; every service when absent.
        #[arg(long)]
        service: Option<String>,
        #[arg(long, default_value = "100")]
        limit: u32,
    },
    /// Sends dead letters of one service back to its queue for another try.
    ReplayDeadLetters {
        #[arg(long)]
        service: String,
        /// Event ids to replay (repeat the flag); or --all.
        #[arg(long = "event-id")]
        event_ids: Vec<String>,
        #[arg(long)]
        all: bool,
    },
    /// Lists e-mail and webhook deliveries that failed (or in another status), newest first.
    Deliveries {
        /// pending, sent or failed.
        #[arg(long, default_value = "failed")]
        status: String,
        #[arg(long, default_value = "100")]
        limit: u32,
    },
    /// One district's figures from the reports service (as the national authority).
    Report {
        /// The district's code, e.g. VRC.
        #[arg(long)]
        region: String,
        /// The period: this many days up to now.
        #[arg(long, default_value = "30")]
        days: u32,
    },
    /// Sends a district's RDSA its digest now: the week's figures and the stalled referrals, to its
    /// inbox and e-mail (as on the configured day, PLACEMENT_REPORTS_DIGEST_AT).
    Digest {
        /// The district's code, e.g. VRC.
        #[arg(long)]
        region: String,
    },
    /// The directory: `directory import FILE` fills it from the national register.
    Directory {
        #[command(subcommand)]
        command: DirectoryCommand,
    },
    /// Tries failed deliveries again (their endpoints must be enabled).
    RetryDelivery {
        /// Delivery ids (repeat the flag).
        #[arg(long = "delivery-id", required = true)]
        delivery_ids: Vec<String>,
    },
}

#[derive(Subcommand)]
enum DirectoryCommand {
    /// Imports social services from a register file: CSV (UTF-8 or Windows-1251) or XLSX, with the
    /// columns of docs/integrating.md "Importing the register"; prints what became of every row.
    Import {
        file: std::path::PathBuf,
        /// Show what would change, changing nothing.
        #[arg(long)]
        dry_run: bool,
        /// Close the imported services the file no longer lists (unless they hold places or children).
        #[arg(long)]
        close_missing: bool,
        /// Import as this agency (an RDSA imports its district only); the national authority by default.
        #[arg(long)]
        agency: Option<uuid::Uuid>,
        /// Also write the report of every row to this CSV file.
        #[arg(long)]
        report_csv: Option<std::path::PathBuf>,
    },
    /// Prints the directory's services in Open Referral's HSDS 3.0 (one page holding them all), and on
    /// standard error the latest change, for `--modified-after` next time.
    Export {
        /// hsds, the only format.
        #[arg(long, default_value = "hsds")]
        format: String,
        /// Only services changed after this time (RFC 3339).
        #[arg(long)]
        modified_after: Option<chrono::DateTime<chrono::Utc>>,
    },
}

fn parse_service_url(value: &str) -> Result<(Listed, String), String> {
    let (name, url) = value
        .split_once('=')
        .ok_or_else(|| format!("{value:?} is not NAME=URL"))?;
    let service = Listed::named(name)
        .ok_or_else(|| format!("unknown service {name:?}: {}", Listed::names()))?;
    Ok((service, url.to_string()))
}

fn operator_endpoints<'a>(
    endpoints: &'a Endpoints,
    only: Option<&str>,
) -> anyhow::Result<Vec<(&'static str, &'a str)>> {
    let chosen: Vec<_> = endpoints
        .all()
        .filter(|(name, _)| only.is_none_or(|o| o == *name))
        .collect();
    if chosen.is_empty() {
        anyhow::bail!("unknown service {only:?}: {}", Listed::names());
    }
    Ok(chosen)
}

/// The credentials to call with: the client certificate of the development folder, else that of
/// PLACEMENT_TLS_*, and the development signer unless an identity provider is given (not needed to make
/// them or list the services); and where the services are.
fn set_up(cli: &Cli) -> anyhow::Result<Endpoints> {
    let calls = !matches!(cli.command, Command::DevKeys { .. } | Command::Services);
    if let Some(dir) = &cli.dev_keys
        && calls
    {
        if cli.issuer.is_none() {
            devkeys::use_signer(devkeys::signer(dir)?);
        }
        if dir.join(devkeys::CA_FILE).exists() {
            devkeys::use_client_tls(dir)?;
        }
    }
    // An operator's machine has no development folder: its certificate is configured as a service's is.
    let tls = [
        "PLACEMENT_TLS_CERT",
        "PLACEMENT_TLS_KEY",
        "PLACEMENT_TLS_CA",
    ]
    .map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()));
    match &tls {
        _ if !calls => {}
        [Some(cert), Some(key), Some(ca)] => placement_cli::clients::use_tls(
            placement_platform::tls::TlsMaterial::read(cert, key, ca)?.client(),
        ),
        [None, None, None] => {}
        _ => anyhow::bail!(placement_platform::tls::TlsError::Partial),
    }
    let mut endpoints = Endpoints::from_env();
    for (service, url) in &cli.urls {
        endpoints.set(*service, url.clone());
    }
    Ok(endpoints)
}

/// Where and as whom to sign in, when an identity provider is given.
fn sign_in_settings(cli: &Cli) -> anyhow::Result<Option<SignInSettings>> {
    let Some(issuer) = cli.issuer.clone() else {
        return Ok(None);
    };
    let cache = match cli
        .token_cache
        .clone()
        .or_else(placement_cli::token_cache::default_path)
    {
        Some(path) => path,
        None => anyhow::bail!(
            "no HOME or XDG_CACHE_HOME to keep tokens under: set PLACEMENT_CLI_TOKEN_CACHE"
        ),
    };
    Ok(Some(SignInSettings {
        issuer,
        client_id: cli.client_id.clone(),
        client_secret: std::env::var("PLACEMENT_CLI_CLIENT_SECRET")
            .ok()
            .filter(|s| !s.is_empty()),
        resource: cli.resource.clone(),
        cache,
    }))
}

/// With an identity provider, makes this run's requests carry its access token. The demo's commands act
/// as many agencies, which one sign-in cannot: they keep to the development signer.
async fn authorize(command: &Command, settings: Option<&SignInSettings>) -> anyhow::Result<()> {
    let Some(settings) = settings else {
        return Ok(());
    };
    match command {
        Command::DevKeys { .. }
        | Command::MintToken { .. }
        | Command::Services
        | Command::WaitReady { .. }
        | Command::SignIn
        | Command::SignOut => Ok(()),
        Command::SeedDemo | Command::Scenario | Command::DemoAccounts => anyhow::bail!(
            "this command acts as many agencies: it needs the development signer (--dev-keys), not a sign-in (unset PLACEMENT_CLI_ISSUER)"
        ),
        _ => {
            let token = sign_in::access_token(settings).await?;
            placement_cli::clients::use_bearer(&token).map_err(|_| {
                anyhow::anyhow!("the identity provider's access token is not a header value")
            })?;
            Ok(())
        }
    }
}

/// `sign-in`: the device flow, telling the person where to confirm the code.
async fn sign_in_person(settings: Option<&SignInSettings>) -> anyhow::Result<()> {
    let settings = settings
        .context("sign-in needs the identity provider: --issuer or PLACEMENT_CLI_ISSUER")?;
    let tokens = sign_in::sign_in_person(settings, |device| {
        eprintln!(
            "Open {} and enter the code {}",
            device.verification_uri, device.user_code
        );
        if let Some(complete) = &device.verification_uri_complete {
            eprintln!("(or open {complete})");
        }
        eprintln!("Waiting for the sign-in to be confirmed...");
    })
    .await?;
    let (agency, roles) = sign_in::claimed(&tokens.access_token)
        .unwrap_or_else(|| ("(not named)".into(), Vec::new()));
    println!(
        "signed in at {}: agency {agency}, roles {}; tokens kept in {}",
        settings.issuer,
        roles.join(","),
        settings.cache.display()
    );
    Ok(())
}

/// `sign-out`: forgets the kept tokens.
fn sign_out(settings: Option<&SignInSettings>) -> anyhow::Result<()> {
    let settings = settings
        .context("sign-out needs the identity provider: --issuer or PLACEMENT_CLI_ISSUER")?;
    let cache = placement_cli::token_cache::TokenCache::new(settings.cache.clone());
    if cache.forget(&settings.issuer, &settings.client_id)? {
        println!("signed out of {}", settings.issuer);
    } else {
        println!("not signed in at {}", settings.issuer);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let endpoints = set_up(&cli)?;
    let settings = sign_in_settings(&cli)?;
    authorize(&cli.command, settings.as_ref()).await?;
    let dev_keys = cli.dev_keys.clone();
    match cli.command {
        Command::SignIn => sign_in_person(settings.as_ref()).await?,
        Command::SignOut => sign_out(settings.as_ref())?,
        Command::Services => {
            for service in placement_platform::services::ALL {
                println!("{} {}", service.name, service.port);
            }
        }
        Command::Status => status(&endpoints).await?,
        Command::DeadLetters { service, limit } => {
            dead_letters(&endpoints, service.as_deref(), limit).await?
        }
        Command::ReplayDeadLetters {
            service,
            event_ids,
            all,
        } => replay_dead_letters(&endpoints, &service, event_ids, all).await?,
        Command::Deliveries { status, limit } => deliveries(&endpoints, &status, limit).await?,
        Command::Report { region, days } => report(&endpoints, &region, days).await?,
        Command::Directory { command } => directory(&endpoints, command).await?,
        Command::Digest { region } => digest(&endpoints, &region).await?,
        Command::RetryDelivery { delivery_ids } => {
            retry_deliveries(&endpoints, delivery_ids).await?
        }
        Command::DevKeys { dir } => {
            devkeys::ensure(&dir)?;
            devkeys::ensure_pki(&dir)?;
            println!("{}", dir.join(devkeys::JWKS_FILE).display());
        }
        Command::MintToken {
            agency,
            roles,
            ttl_secs,
        } => mint_token(dev_keys.as_deref(), agency, &roles, ttl_secs)?,
        Command::WaitReady { timeout_secs } => wait_until_ready(&endpoints, timeout_secs).await?,
        Command::SeedDemo => {
            let clients = Clients::connect(&endpoints)?;
            let data = demo::seed(&clients).await.context("loading demo data")?;
            println!(
                "demo data loaded: {} agencies, {} services",
                data.agencies.len(),
                data.services.len()
            );
        }
        Command::DemoAccounts => {
            let clients = Clients::connect(&endpoints)?;
            let data = demo::seed(&clients).await.context("loading demo data")?;
            println!("{}", demo::accounts(&data));
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

async fn wait_until_ready(endpoints: &Endpoints, timeout_secs: u64) -> anyhow::Result<()> {
    wait_ready(endpoints, Duration::from_secs(timeout_secs))
        .await
        .map_err(anyhow::Error::msg)?;
    println!(
        "all {} services are serving",
        placement_platform::services::ALL.len()
    );
    Ok(())
}

async fn report(endpoints: &Endpoints, region: &str, days: u32) -> anyhow::Result<()> {
    let report = placement_cli::report::district(endpoints, region, days)
        .await
        .map_err(|e| anyhow::anyhow!("GetDistrictReport: {}", e.message()))?;
    print!("{}", placement_cli::report::text(&report, days));
    Ok(())
}

async fn directory(endpoints: &Endpoints, command: DirectoryCommand) -> anyhow::Result<()> {
    match command {
        DirectoryCommand::Import {
            file,
            dry_run,
            close_missing,
            agency,
            report_csv,
        } => {
            let agency = agency.unwrap_or(placement_platform::caller::NATIONAL_AUTHORITY);
            import(
                endpoints,
                &file,
                agency,
                (dry_run, close_missing),
                report_csv.as_deref(),
            )
            .await
        }
        DirectoryCommand::Export {
            format,
            modified_after,
        } => {
            anyhow::ensure!(format == "hsds", "--format: hsds is the only format");
            export(endpoints, modified_after).await
        }
    }
}

/// The directory in HSDS 3.0 on standard output, as one page holding every service.
async fn export(
    endpoints: &Endpoints,
    modified_after: Option<chrono::DateTime<chrono::Utc>>,
) -> anyhow::Result<()> {
    let mut directory = placement_cli::clients::Clients::connect(endpoints)?.directory;
    let (services, last) = placement_cli::import::export_hsds(
        &mut directory,
        placement_platform::caller::NATIONAL_AUTHORITY,
        modified_after.map(placement_platform::time::timestamp),
    )
    .await
    .map_err(|e| anyhow::anyhow!("ExportDirectory: {}", e.message()))?;
    let total = services.len();
    let page = serde_json::json!({
        "total_items": total, "total_pages": 1, "page_number": 1, "size": total,
        "first_page": true, "last_page": true, "empty": total == 0, "contents": services,
    });
    println!("{page}");
    if let Some(at) = last
        .as_ref()
        .and_then(placement_platform::time::from_timestamp)
    {
        eprintln!(
            "{total} services; the latest changed at {}",
            at.to_rfc3339()
        );
    }
    Ok(())
}

async fn import(
    endpoints: &Endpoints,
    file: &std::path::Path,
    agency: uuid::Uuid,
    (dry_run, close_missing): (bool, bool),
    report_csv: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    eprintln!(
        "sending {} ({} KiB)",
        file.display(),
        bytes.len().div_ceil(1024)
    );
    let mut directory = placement_cli::clients::Clients::connect(endpoints)?.directory;
    let name = placement_cli::import::file_name(file);
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows written ({elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let report = placement_cli::import::import_with_progress(
        &mut directory,
        agency,
        &name,
        &bytes,
        (dry_run, close_missing),
        |done, total| {
            bar.set_length(u64::from(total));
            bar.set_position(u64::from(done));
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("ImportServices: {}", e.message()))?;
    bar.finish_and_clear();
    print!("{}", placement_cli::import::text(&report));
    if let Some(path) = report_csv {
        std::fs::write(path, placement_cli::import::csv(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("the report of every row: {}", path.display());
    }
    Ok(())
}

async fn digest(endpoints: &Endpoints, region: &str) -> anyhow::Result<()> {
    let id = placement_cli::report::send_digest(endpoints, region)
        .await
        .map_err(|e| anyhow::anyhow!("SendDistrictDigest: {}", e.message()))?;
    println!("digest {id} sent to the RDSA of {region}");
    Ok(())
}

type OperatorClient = OperatorServiceClient<tonic::transport::Channel>;

fn operator(url: &str) -> anyhow::Result<OperatorClient> {
    Ok(OperatorServiceClient::new(placement_cli::clients::channel(
        url,
    )?))
}

/// Each service's dependencies, outbox backlog, queue depth and dead letters.
async fn status(endpoints: &Endpoints) -> anyhow::Result<()> {
    let mut waiting = 0;
    for (name, url) in operator_endpoints(endpoints, None)? {
        match operator(url)?
            .get_status(as_agency(demo::NATIONAL_AUTHORITY, GetStatusRequest {}))
            .await
        {
            Ok(r) => {
                let r = r.into_inner();
                waiting += r.dead_letters;
                println!(
                    "{name:<14} database {:<4} broker {:<4} outbox pending {:>5} (oldest {:.1}s)  queue {} ready {:>5}  dead letters {}",
                    if r.database_ok { "ok" } else { "DOWN" },
                    if r.broker_ok { "ok" } else { "DOWN" },
                    r.outbox_pending,
                    r.outbox_oldest_pending_seconds,
                    r.queue,
                    r.queue_ready,
                    r.dead_letters
                );
            }
            Err(e) => println!("{name:<14} not answering: {}", e.message()),
        }
    }
    if waiting > 0 {
        println!("{waiting} dead letter(s) waiting: placement-cli dead-letters");
    }
    Ok(())
}

async fn dead_letters(
    endpoints: &Endpoints,
    service: Option<&str>,
    limit: u32,
) -> anyhow::Result<()> {
    for (name, url) in operator_endpoints(endpoints, service)? {
        let r = operator(url)?
            .list_dead_letters(as_agency(
                demo::NATIONAL_AUTHORITY,
                ListDeadLettersRequest { limit },
            ))
            .await
            .with_context(|| format!("{name}: ListDeadLetters"))?
            .into_inner();
        println!("{name}: {} dead letter(s)", r.total);
        for d in r.dead_letters {
            println!(
                "  event {} type {} routing key {} reason {} deaths {} size {}B",
                if d.event_id.is_empty() {
                    "-"
                } else {
                    &d.event_id
                },
                if d.event_type.is_empty() {
                    "-"
                } else {
                    &d.event_type
                },
                d.routing_key,
                d.reason,
                d.deaths,
                d.size_bytes
            );
        }
    }
    Ok(())
}

async fn deliveries(endpoints: &Endpoints, status: &str, limit: u32) -> anyhow::Result<()> {
    let status = match status {
        "pending" => DeliveryStatus::Pending,
        "sent" => DeliveryStatus::Sent,
        "failed" => DeliveryStatus::Failed,
        other => anyhow::bail!("--status {other}: expected pending, sent or failed"),
    };
    let clients = Clients::connect(endpoints)?;
    let r = clients
        .notifications
        .clone()
        .list_deliveries(as_agency(
            demo::NATIONAL_AUTHORITY,
            ListDeliveriesRequest {
                status: status as i32,
                page_size: limit,
                ..Default::default()
            },
        ))
        .await
        .context("ListDeliveries")?
        .into_inner();
    println!(
        "{} delivery(ies) {}",
        r.deliveries.len(),
        status.as_str_name()
    );
    for d in r.deliveries {
        println!(
            "  {} {} to {} attempts {} last error {}",
            d.id,
            d.channel,
            d.address,
            d.attempts,
            if d.last_error.is_empty() {
                "-"
            } else {
                &d.last_error
            }
        );
    }
    Ok(())
}

fn mint_token(
    dev_keys: Option<&std::path::Path>,
    agency: uuid::Uuid,
    roles: &[String],
    ttl_secs: u64,
) -> anyhow::Result<()> {
    let dir = dev_keys.context("mint-token needs --dev-keys (or PLACEMENT_DEV_KEYS)")?;
    let signer = devkeys::signer(dir)?;
    let roles = if roles.is_empty() {
        devkeys::default_roles(agency).to_vec()
    } else {
        roles
            .iter()
            .map(|r| Role::parse(r).with_context(|| format!("unknown role {r}")))
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    println!(
        "{}",
        signer.mint(
            agency,
            &format!("dev-user@{agency}"),
            &roles,
            Duration::from_secs(ttl_secs)
        )
    );
    Ok(())
}

async fn replay_dead_letters(
    endpoints: &Endpoints,
    service: &str,
    event_ids: Vec<String>,
    all: bool,
) -> anyhow::Result<()> {
    let (name, url) = operator_endpoints(endpoints, Some(service))?[0];
    let r = operator(url)?
        .replay_dead_letters(as_agency(
            demo::NATIONAL_AUTHORITY,
            ReplayDeadLettersRequest { event_ids, all },
        ))
        .await
        .with_context(|| format!("{name}: ReplayDeadLetters"))?
        .into_inner();
    println!(
        "{name}: {} dead letter(s) sent back to the queue",
        r.replayed
    );
    Ok(())
}

async fn retry_deliveries(endpoints: &Endpoints, delivery_ids: Vec<String>) -> anyhow::Result<()> {
    let clients = Clients::connect(endpoints)?;
    for id in delivery_ids {
        clients
            .notifications
            .clone()
            .retry_delivery(as_agency(
                demo::NATIONAL_AUTHORITY,
                RetryDeliveryRequest {
                    delivery_id: id.clone(),
                },
            ))
            .await
            .with_context(|| format!("RetryDelivery {id}"))?;
        println!("{id}: will be tried again now");
    }
    Ok(())
}
