//! `cargo xtask fuzz`: schemathesis against a real `baton`, driven by the OpenAPI document the
//! server serves. The server runs on a fresh SQLite database in a temporary directory, with rate
//! limits off and a ban threshold no fuzzer reaches in its window, so that every generated request
//! reaches the handlers instead of a 429 or a ban. Any 5xx or any response the document does not
//! describe fails the run, and so does a server that no longer answers its health probe afterwards.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

use crate::{cargo, workspace_root};

/// Paths left out of the run: websockets are not HTTP request/response operations; logging out
/// would revoke the fuzzer's own token; deleting users could delete the admin it acts as.
const EXCLUDED_PATHS: &str = "^/ws/|/auth/logout|/users/\\{";

/// What every response must satisfy: no 5xx, and nothing the document does not describe (a
/// status code it does not list, another content type, a body that breaks its schema).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";

/// Examples per operation: enough to reach every field's edge cases through the coverage phase,
/// while the whole run stays around a minute on two cores.
const MAX_EXAMPLES: &str = "25";

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let schemathesis = std::env::var("SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".to_owned());
    // schemathesis runs in the server's temporary directory: a relative path given here (as
    // .ci/run does) is resolved first, while the current directory is still the caller's.
    let schemathesis = if schemathesis.contains(std::path::MAIN_SEPARATOR) {
        std::path::absolute(&schemathesis)
            .with_context(|| format!("resolving {schemathesis}"))?
            .display()
            .to_string()
    } else {
        schemathesis
    };
    let found = Command::new(&schemathesis)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        bail!(
            "schemathesis was not found (`{schemathesis}`): install it with \
             `pip install schemathesis` or set SCHEMATHESIS to its path (.ci/run does both)"
        );
    }
    cargo(&["build", "-p", "baton-server", "--bin", "baton"])?;
    let server = FuzzServer::start()?;
    let result = fuzz(&server, &schemathesis, args);
    let alive = server.get_status("/health");
    let log = server.stop();
    if let Err(e) = result {
        eprintln!("xtask: the server's log ends with:\n{}", tail(&log, 40));
        return Err(e);
    }
    match alive {
        Ok(200) => {
            eprintln!("xtask: no 5xx, and the server is still healthy");
            Ok(())
        }
        other => {
            eprintln!("xtask: the server's log ends with:\n{}", tail(&log, 40));
            bail!("the server is not healthy after the fuzzing run: {other:?}")
        }
    }
}

fn fuzz(server: &FuzzServer, schemathesis: &str, extra: &[String]) -> anyhow::Result<()> {
    let token = server.login()?;
    let url = format!("http://{}/api/v1/openapi.json", server.address);
    let header = format!("Authorization: Bearer {token}");
    let mut command = Command::new(schemathesis);
    command
        .args(["run", &url, "-H", &header])
        .args(["--checks", CHECKS])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--exclude-path-regex", EXCLUDED_PATHS])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--workers", "2"])
        // A robot's claim without `wait_seconds` long-polls for 20 s (at most 30).
        .args(["--request-timeout", "35"])
        .args(extra)
        // The token is in the arguments; the command line is shown without it.
        .current_dir(&server.dir);
    eprintln!("xtask: schemathesis run {url} --checks {CHECKS} (admin token elided)");
    let status = command.status().context("running schemathesis")?;
    if !status.success() {
        bail!("schemathesis found failures ({status}); see its report above");
    }
    Ok(())
}

/// A `baton` process on a fresh database, stopped by [`FuzzServer::stop`].
struct FuzzServer {
    child: Child,
    dir: PathBuf,
    address: String,
    password: String,
}

impl FuzzServer {
    fn start() -> anyhow::Result<Self> {
        let nonce = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!("baton-fuzz-{}-{nonce}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let address = format!("127.0.0.1:{}", free_port()?);
        let password = format!("fuzz-{nonce:x}");
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"));
        let log = std::fs::File::create(dir.join("server.log")).context("creating the log")?;
        let child = Command::new(target_dir.join("debug").join("baton"))
            .args(["--bind", &address, "--admin-password", &password])
            .args(["--rate-limits", "off"])
            .args(["--ban-threshold", "1000", "--ban-window-seconds", "1"])
            .arg("--workflows-dir")
            .arg(dir.join("workflows"))
            .arg("--database-url")
            .arg(format!("sqlite://{}", dir.join("baton.db").display()))
            .current_dir(&dir)
            .env_remove("DATABASE_URL")
            .env_remove("JWT_DEV_MODE")
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("sharing the log")?)
            .stderr(log)
            .spawn()
            .context("starting baton")?;
        let server = FuzzServer {
            child,
            dir,
            address,
            password,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.get_status("/health").ok() != Some(200) {
            if Instant::now() > deadline {
                let log = server.stop();
                bail!("baton did not become healthy in 30 s:\n{}", tail(&log, 40));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(server)
    }

    /// The admin's access token.
    fn login(&self) -> anyhow::Result<String> {
        let body = format!(r#"{{"username":"admin","password":"{}"}}"#, self.password);
        let (status, reply) = self.request("POST", "/api/v1/auth/login", Some(&body))?;
        if status != 200 {
            bail!("logging in as admin answered {status}: {reply}");
        }
        let value: serde_json::Value = serde_json::from_str(&reply).context("the login reply")?;
        value["access_token"]
            .as_str()
            .map(str::to_owned)
            .context("the login reply has no access_token")
    }

    fn get_status(&self, path: &str) -> anyhow::Result<u16> {
        self.request("GET", path, None).map(|(status, _)| status)
    }

    /// One HTTP/1.1 request on a fresh connection (`Connection: close`): xtask needs two calls
    /// and no HTTP client crate for them.
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<(u16, String)> {
        let mut stream = TcpStream::connect(&self.address)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let body = body.unwrap_or("");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.address,
            body.len()
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .context("a response without a status line")?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    }

    /// Stops the server and returns its log; the temporary directory goes with it.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&self.dir);
        log
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::tail;

    #[test]
    fn the_tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
