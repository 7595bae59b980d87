#[tokio::main]
async fn main() -> anyhow::Result<()> {
    placement_messaging::service::main::<placement_web::Web>().await?;
    Ok(())
}
