//! The connection under the HTTP layer, watched for the answers actix-http writes on its own.
//!
//! When a request cannot be parsed as HTTP/1.1 (garbage, a broken header, a bad chunk size), has
//! headers too large, or sends its head too slowly, actix-http answers in its dispatcher, before
//! any middleware or handler exists for the request: `400`, `431` or `408` with an empty body,
//! then closes the connection. Nothing in actix lets an application shape those answers, so this
//! wrapper recognises them on their way to the socket and writes the API's JSON error instead:
//! every answer a client gets from Baton has the one error shape.
//!
//! They are told apart from the application's own answers by their head: every error the
//! application writes has a JSON body (see `errors.rs` and `fallback.rs`), so a `400`, `408` or
//! `431` with `content-length: 0` can only come from the dispatcher. Bodies of the application's
//! responses are JSON, text or the console's assets, none of which holds a bare CR LF followed
//! by a status line, so a head is only ever found where a response starts.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The dispatcher's own answers: the start of each head, and the JSON that replaces it.
const REPLACEMENTS: [(&[u8], &str, &str); 3] = [
    (
        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
        "400 Bad Request",
        r#"{"error":"Bad Request","detail":"the request is not valid HTTP/1.1 (its request line, a header or the body's framing could not be parsed)"}"#,
    ),
    (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n",
        "431 Request Header Fields Too Large",
        r#"{"error":"Request Header Fields Too Large","detail":"the request's headers are too large"}"#,
    ),
    (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n",
        "408 Request Timeout",
        r#"{"error":"Request Timeout","detail":"the request's head did not arrive in time"}"#,
    ),
];

/// A connection whose dispatcher-made error answers are rewritten as JSON errors.
#[derive(Debug)]
pub struct JsonErrorAnswers<IO> {
    inner: IO,
    /// A rewritten answer still being written, and how much of the caller's buffer it stands for.
    pending: Option<Pending>,
}

#[derive(Debug)]
struct Pending {
    bytes: Vec<u8>,
    written: usize,
    /// The length of the caller's buffer the rewritten bytes replace, reported once all are out.
    stands_for: usize,
}

impl<IO> JsonErrorAnswers<IO> {
    pub fn new(inner: IO) -> Self {
        Self {
            inner,
            pending: None,
        }
    }
}

/// `buf` with a dispatcher-made answer replaced, if it holds one. Such an answer is the last
/// thing on its connection, so everything after its head is dropped with it.
fn rewrite(buf: &[u8]) -> Option<Vec<u8>> {
    for (head, status, body) in REPLACEMENTS {
        let Some(start) = find_at_response_start(buf, head) else {
            continue;
        };
        let mut out = Vec::with_capacity(start + 160 + body.len());
        out.extend_from_slice(&buf[..start]);
        out.extend_from_slice(
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        return Some(out);
    }
    None
}

/// Where `head` starts in `buf` at the start of a response: at the very start, or right after
/// the blank line or body of the response before it (pipelined answers share one write).
fn find_at_response_start(buf: &[u8], head: &[u8]) -> Option<usize> {
    (0..buf.len().saturating_sub(head.len()) + 1)
        .find(|&at| buf[at..].starts_with(head) && previous_response_ended(&buf[..at]))
}

/// Whether `before` ends where a response could start: nothing, a complete head, or a body
/// that ends the way a JSON, text or asset body does. A head inside a body would need a bare
/// CR LF within it, which no body of the application holds.
fn previous_response_ended(before: &[u8]) -> bool {
    before.is_empty()
        || before.ends_with(b"\r\n\r\n")
        || before.ends_with(b"}")
        || before.ends_with(b"]")
        || before.ends_with(b"\n")
}

impl<IO: AsyncRead + Unpin> AsyncRead for JsonErrorAnswers<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for JsonErrorAnswers<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none() {
            match rewrite(buf) {
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
                Some(bytes) => {
                    this.pending = Some(Pending {
                        bytes,
                        written: 0,
                        stands_for: buf.len(),
                    });
                }
            }
        }
        // Write the rewritten answer to the end before telling the caller its buffer is out:
        // the caller retries with the same buffer until then.
        while let Some(pending) = this.pending.as_mut() {
            if pending.written == pending.bytes.len() {
                let stands_for = pending.stands_for;
                this.pending = None;
                return Poll::Ready(Ok(stands_for));
            }
            match Pin::new(&mut this.inner).poll_write(cx, &pending.bytes[pending.written..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => pending.written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARSE_ERROR: &[u8] =
        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\ndate: Mon, 07 Dec 2026 17:00:00 GMT\r\n\r\n";

    fn text(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec()).unwrap_or_default()
    }

    #[test]
    fn the_dispatchers_empty_answers_become_json_errors() {
        let out = text(&rewrite(PARSE_ERROR).unwrap_or_default());
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
        assert!(out.contains("content-type: application/json\r\n"), "{out}");
        let body = out.split("\r\n\r\n").nth(1).unwrap_or_default();
        let parsed: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        assert_eq!(parsed["error"], "Bad Request");
        assert!(
            parsed["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("HTTP/1.1")
        );
        assert!(out.contains(&format!("content-length: {}\r\n", body.len())));

        for (answer, status) in [
            (
                &b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n"[..],
                431,
            ),
            (
                &b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\ndate: x\r\n\r\n"[..],
                408,
            ),
        ] {
            let out = text(&rewrite(answer).unwrap_or_default());
            assert!(out.starts_with(&format!("HTTP/1.1 {status} ")), "{out}");
            assert!(out.ends_with('}'), "{out}");
        }
    }

    #[test]
    fn the_applications_answers_pass_untouched() {
        for answer in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-length: 41\r\ncontent-type: application/json\r\n\r\n{\"error\":\"Bad Request\",\"detail\":\"x\"}"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 30\r\n\r\n",
            // A body that merely mentions the head is no head.
            b"HTTP/1.1 200 OK\r\ncontent-length: 60\r\n\r\n{\"text\":\"HTTP/1.1 400 Bad Request\\r\\ncontent-length: 0\\r\\n\"}",
        ] {
            assert!(rewrite(answer).is_none(), "{}", text(answer));
        }
    }

    #[test]
    fn a_pipelined_answer_before_the_error_is_kept() {
        let mut both = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".to_vec();
        both.extend_from_slice(PARSE_ERROR);
        let out = text(&rewrite(&both).unwrap_or_default());
        assert!(out.starts_with("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}HTTP/1.1 400 Bad Request\r\ncontent-type: application/json"), "{out}");
    }
}
