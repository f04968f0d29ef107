//! `bcn serve`.

use std::net::SocketAddr;

use super::{ExitStatus, PlanArgs};
use crate::context::Context;
use crate::engine::EngineError;

/// Serve backups, verifications and restores over an HTTP API (tokens and roles from the
/// plan's `api:` section, job history in `SQLite`; see `/v1/openapi.json`).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    plan: PlanArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,
    /// Also run `apply`'s due entries this often (`15m`, `1h`): the server alone replaces a
    /// timer.
    #[arg(long, value_name = "DURATION")]
    schedule: Option<String>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

pub(crate) async fn run(
    args: Args,
    ctx: &Context,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<ExitStatus> {
    let Some(plan) = args.plan.config.clone() else {
        return Err(EngineError::invalid("`bcn serve` needs a plan: pass --config PLAN").into());
    };
    let schedule = args
        .schedule
        .as_deref()
        .map(|s| {
            crate::plan::parse_duration(s)
                .map_err(|e| EngineError::invalid(format!("--schedule: {e}")))?
                .to_std()
                .map_err(|_| EngineError::invalid("--schedule must be positive"))
        })
        .transpose()?;
    crate::serve::serve(
        crate::serve::ServeOptions {
            plan,
            listen: args.listen,
            schedule,
            tls: args.tls_cert.zip(args.tls_key),
        },
        ctx.clone(),
        stop,
    )
    .await?;
    Ok(ExitStatus::Success)
}
