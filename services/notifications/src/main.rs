#[tokio::main]
async fn main() -> anyhow::Result<()> {
    placement_messaging::service::main::<placement_notifications::Notifications>().await?;
    Ok(())
}
