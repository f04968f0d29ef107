//! An entry's `before` and `after` commands.
//!
//! Each runs with a time limit; its arguments may hold secrets (resolved `${...}` references),
//! so logs and errors name the program only. Its stdout and stderr go to bcn's stderr.

use std::process::Stdio;

/// Runs one hook; `Err` says what went wrong, naming only the program.
pub(crate) async fn run(
    argv: &[String],
    env: &[(&str, String)],
    timeout: std::time::Duration,
) -> Result<(), String> {
    let Some((program, arguments)) = argv.split_first() else {
        return Err("empty command".into());
    };
    let mut child = tokio::process::Command::new(program)
        .args(arguments)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("hook `{program}` could not start: {e}"))?;
    tracing::info!(hook = %program, "running hook");
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!("hook `{program}` failed ({status})")),
        Ok(Err(e)) => Err(format!("hook `{program}`: {e}")),
        Err(_) => {
            let _ = child.kill().await;
            Err(format!(
                "hook `{program}` did not finish within {} and was killed",
                humantime::format_duration(timeout)
            ))
        }
    }
}
