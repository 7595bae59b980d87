#[tokio::main]
async fn main() -> anyhow::Result<()> {
    placement_messaging::service::main::<placement_reports::Reports>().await?;
    Ok(())
}
