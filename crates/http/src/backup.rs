//! The file copy of every workflow kept in `WORKFLOWS_DIR` when `WORKFLOW_BACKUP_ENABLED` is on
//! (docs/workflows.md, "Backups"). It writes whatever document it is handed; the workflow routes
//! decide what a backup holds.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use actix_web::web;
use baton_domain::ids::WorkflowId;
use serde::Serialize;

/// `<dir>/<workflow_id>.json` for every workflow, holding what `GET /workflows/{id}` shows but
/// the agents.
///
/// The database stays the source of truth; the files are a copy an operator can read, diff or
/// put under version control. So a backup that fails is logged as a warning and does not fail
/// the request that stored the workflow: refusing a stored workflow over a full disk would
/// answer an error for something that happened.
#[derive(Debug, Clone)]
pub struct WorkflowBackup {
    dir: PathBuf,
}

impl WorkflowBackup {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `document` as the workflow's file, atomically (a temporary file renamed over the
    /// old one), so a reader never sees half a file.
    pub async fn save(&self, id: WorkflowId, document: &impl Serialize) {
        let document = match serde_json::to_vec_pretty(document) {
            Ok(document) => document,
            Err(e) => return self.warn("encode", id, &e),
        };
        let dir = self.dir.clone();
        match web::block(move || write_atomically(&dir, id, &document)).await {
            Ok(Ok(())) => tracing::debug!(workflow = %id, "workflow backed up"),
            Ok(Err(e)) => self.warn("write", id, &e),
            Err(e) => self.warn("write", id, &e),
        }
    }

    /// Deletes the workflow's file; a file that is already gone is fine.
    pub async fn remove(&self, id: WorkflowId) {
        let path = self.dir.join(file_name(id));
        match web::block(move || std::fs::remove_file(path)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Ok(Err(e)) => self.warn("remove", id, &e),
            Err(e) => self.warn("remove", id, &e),
        }
    }

    fn warn(&self, action: &str, id: WorkflowId, error: &dyn std::fmt::Display) {
        tracing::warn!(
            workflow = %id,
            dir = %self.dir.display(),
            error = %error,
            "could not {action} the workflow's backup file; the database copy is unaffected"
        );
    }
}

/// A workflow id is a UUID, so the name cannot leave the directory.
fn file_name(id: WorkflowId) -> String {
    format!("{id}.json")
}

fn write_atomically(dir: &Path, id: WorkflowId, document: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let temporary = dir.join(format!(".{id}.json.tmp"));
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(document)?;
        file.sync_all()?;
        std::fs::rename(&temporary, dir.join(file_name(id)))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}
