//! The `bcn` binary: parse arguments, set up logging and the runtime, run, map to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = bcn::cli::Cli::parse();
    // One TLS provider for every HTTPS client (S3 FileIO, REST catalogs, webhooks); a second
    // call (from a test harness) is harmless.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    bcn::cli::init_tracing(&cli.global);
    let runtime = match bcn::cli::runtime(&cli) {
        Ok(rt) => rt,
        Err(e) => {
            bcn::cli::report_fatal(&anyhow::Error::new(e).context("starting the async runtime"));
            return ExitCode::from(1);
        }
    };
    let status = runtime.block_on(bcn::cli::run(cli));
    // Everything the command waits for has ended; a blocking read stuck on a hung disk or
    // mount after a signal dropped its work must not hold the process (dropping the runtime
    // would wait for it without end).
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    ExitCode::from(status.code())
}
