//! Prints the OpenAPI document, exactly as `GET /api/v1/openapi.json` serves it, to standard
//! output. `cargo xtask openapi` runs it to write (or check) `docs/openapi.json`.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let text = match baton_http::openapi::document_json() {
        Ok(text) => text,
        Err(e) => {
            eprintln!("the OpenAPI document cannot be built: {e}");
            return ExitCode::FAILURE;
        }
    };
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cannot write the document: {e}");
            ExitCode::FAILURE
        }
    }
}
