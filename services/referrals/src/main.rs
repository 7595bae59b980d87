use anyhow::Context;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    placement_platform::telemetry::init("placement-referrals");
    let config = placement_referrals::Config::from_env().context("reading configuration")?;
    let shutdown = CancellationToken::new();
    placement_platform::shutdown::cancel_on_signal(shutdown.clone());
    let listener = placement_platform::grpc::bind(config.listen_addr)
        .await
        .with_context(|| format!("binding {}", config.listen_addr))?;
    placement_referrals::run(config, listener, shutdown).await?;
    Ok(())
}
