#[tokio::main]
async fn main() -> anyhow::Result<()> {
    placement_messaging::service::main::<placement_cases::Cases>().await?;
    Ok(())
}
