//! `Shell`: runs `config.command` with `sh -c` (optionally in `config.working_dir`), within
//! `config.timeout_seconds` (default 60), and outputs `{exit_code, stdout, stderr}`, each
//! stream cut at 64 KB. A non-zero exit fails the node. Off unless the robot was started with
//! `--enable-shell`: a workflow must not gain a shell on every robot by default.
//!
//! The command sees where it runs in its environment: `BATON_JOB_ID`, `BATON_NODE_ID` and
//! `BATON_ATTEMPT` (1 on the job's first run; above 1 the job ran before and lost its robot, so
//! the command may already have run once: a script can check before it acts again).
//!
//! The command runs in a process group of its own, and the whole group is killed when the node
//! is dropped (a hard cancel, a shutdown, the timeout), so `sleep 600; do-something` stops too,
//! not only the `sh` in front of it.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{
    MAX_CAPTURE_BYTES, NodeContext, NodeError, NodeResult, required_string, seconds, string,
};
use crate::text::lossy_capped;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

pub const DISABLED: &str = "Shell nodes are off on this robot: start it with --enable-shell \
                            (BATON_ROBOT_ENABLE_SHELL=true) to let workflows run commands here";

pub async fn run(cx: NodeContext<'_>) -> NodeResult {
    if !cx.services.shell_enabled {
        return Err(NodeError::new(DISABLED));
    }
    let command = required_string(cx.config, "command")?;
    let timeout = seconds(cx.config, "timeout_seconds", DEFAULT_TIMEOUT, MAX_TIMEOUT)?;
    let mut sh = tokio::process::Command::new("sh");
    sh.arg("-c")
        .arg(command)
        .env("BATON_JOB_ID", cx.job_id)
        .env("BATON_NODE_ID", cx.node_id)
        .env("BATON_ATTEMPT", cx.attempt.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    sh.process_group(0);
    if let Some(dir) = string(cx.config, "working_dir")? {
        sh.current_dir(dir);
    }
    let mut child = sh
        .spawn()
        .map_err(|e| NodeError::new(format!("starting sh failed: {e}")))?;
    let mut group = GroupKiller(child.id());
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let finished = tokio::time::timeout(timeout, async {
        tokio::join!(capture(stdout), capture(stderr), child.wait())
    })
    .await;
    let Ok(((stdout, stdout_cut), (stderr, stderr_cut), status)) = finished else {
        return Err(NodeError::new(format!(
            "the command did not finish within {} s and was killed",
            timeout.as_secs_f64()
        )));
    };
    let status = status.map_err(|e| NodeError::new(format!("waiting for sh failed: {e}")))?;
    // `sh` has exited and been reaped: its id may be reused, so it must not be killed now.
    group.0 = None;
    let mut output = json!({"exit_code": status.code(), "stdout": stdout, "stderr": stderr});
    if stdout_cut || stderr_cut {
        output["truncated"] = true.into();
    }
    if status.success() {
        return Ok(Some(output));
    }
    let reason = match status.code() {
        Some(code) => format!("the command exited with code {code}"),
        None => "the command was killed by a signal".to_owned(),
    };
    let tail = output["stderr"].as_str().unwrap_or_default().trim();
    let message = if tail.is_empty() {
        reason
    } else {
        format!("{reason}: {}", crate::text::truncate_chars(tail, 500))
    };
    Err(NodeError::with_output(message, output))
}

/// Kills the command's process group when dropped before the command ended.
struct GroupKiller(Option<u32>);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(pgid) = self.0 {
            // The workspace forbids `unsafe`, so no libc call: `kill` takes a negative id for a
            // process group.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A stream's first [`MAX_CAPTURE_BYTES`] as text, reading on to the end so the command never
/// blocks on a full pipe; `true` when something was cut.
async fn capture(pipe: Option<impl AsyncRead + Unpin>) -> (String, bool) {
    let Some(mut pipe) = pipe else {
        return (String::new(), false);
    };
    let mut kept = Vec::new();
    let mut cut = false;
    let mut buffer = [0u8; 8192];
    while let Ok(n) = pipe.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        let room = MAX_CAPTURE_BYTES.saturating_sub(kept.len());
        kept.extend_from_slice(&buffer[..n.min(room)]);
        cut |= n > room;
    }
    let (text, lossy_cut) = lossy_capped(&kept, MAX_CAPTURE_BYTES);
    (text, cut || lossy_cut)
}

#[cfg(all(test, unix))]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::NodeKind;
    use super::super::testing::{run_in_attempt, run_node, run_with, services};
    use serde_json::json;

    fn enabled() -> super::super::Services {
        let mut s = services();
        s.shell_enabled = true;
        s
    }

    #[tokio::test]
    async fn is_refused_unless_enabled() {
        let error = run_node(NodeKind::Shell, json!({"command": "echo hi"}))
            .await
            .unwrap_err();
        assert_eq!(error.message, super::DISABLED);
    }

    #[tokio::test]
    async fn outputs_exit_code_and_streams() {
        let out = run_with(
            NodeKind::Shell,
            &enabled(),
            json!({"command": "echo out; echo err >&2"}),
        )
        .await;
        assert_eq!(
            out,
            Ok(Some(
                json!({"exit_code": 0, "stdout": "out\n", "stderr": "err\n"})
            ))
        );
    }

    #[tokio::test]
    async fn the_command_knows_its_job_node_and_attempt() {
        let out = run_in_attempt(
            NodeKind::Shell,
            &enabled(),
            json!({"command": "echo \"$BATON_JOB_ID $BATON_NODE_ID $BATON_ATTEMPT\""}),
            2,
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(out["stdout"], "job node 2\n");
    }

    #[tokio::test]
    async fn a_non_zero_exit_fails_with_the_output() {
        let error = run_with(
            NodeKind::Shell,
            &enabled(),
            json!({"command": "echo broken >&2; exit 3"}),
        )
        .await
        .unwrap_err();
        assert_eq!(error.message, "the command exited with code 3: broken");
        assert_eq!(error.output.unwrap()["exit_code"], 3);
    }

    #[tokio::test]
    async fn long_output_is_cut() {
        let out = run_with(
            NodeKind::Shell,
            &enabled(),
            json!({"command": "head -c 200000 /dev/zero | tr '\\0' x"}),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(
            out["stdout"].as_str().unwrap().len(),
            super::MAX_CAPTURE_BYTES
        );
        assert_eq!(out["truncated"], true);
    }

    #[tokio::test]
    async fn times_out_and_kills_the_whole_command() {
        let marker = std::env::temp_dir().join(format!("baton-robot-shell-{}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        let command = format!("sleep 2; touch {}", marker.display());
        let started = Instant::now();
        let error = run_with(
            NodeKind::Shell,
            &enabled(),
            json!({"command": command, "timeout_seconds": 0.3}),
        )
        .await
        .unwrap_err();
        assert!(
            error.message.contains("did not finish"),
            "{}",
            error.message
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(!marker.exists(), "the command's group was not killed");
    }
}
