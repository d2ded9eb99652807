//! A plain HTTP client on the standard library alone, for the servers the tests talk to (admin APIs, exporters,
//! registries, applications): [`http_get`] and [`http_request`], each one request on its own connection, answering
//! with the status and the body.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A plain HTTP/1.0 GET of `path` at `addr`: (status, body). Connects within 2 s and reads the answer within 5 s;
/// asks for JSON (`Accept`), which a server of one content type ignores.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    exchange(
        stream,
        &format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n"),
        Duration::from_secs(5),
    )
}

/// One HTTP/1.1 request (`Connection: close`) of `method` on `path` at `addr` (`host:port`), with `body` as its
/// JSON body and, given a `token`, `Authorization: Bearer`: (status, body). Reads the answer within 60 s.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n{auth}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    exchange(TcpStream::connect(addr)?, &request, Duration::from_secs(60))
}

/// Write `request`, read the answer until the server closes the connection: (status, body).
fn exchange(
    mut stream: TcpStream,
    request: &str,
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not HTTP: {response:.80}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that answers one request with `answer`; the request it got.
    fn answer_once(answer: &'static str) -> (SocketAddr, std::thread::JoinHandle<String>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            // the head, then as many bytes of body as it announces
            while !complete(&request) {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "the client closed early");
                request.extend_from_slice(&buf[..n]);
            }
            s.write_all(answer.as_bytes()).unwrap();
            String::from_utf8_lossy(&request).into_owned()
        });
        (addr, server)
    }

    /// Has `request` its whole head and the body its `Content-Length` announces?
    fn complete(request: &[u8]) -> bool {
        let text = String::from_utf8_lossy(request);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            return false;
        };
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .map_or(0, |n| n.trim().parse().unwrap());
        body.len() >= length
    }

    #[test]
    fn a_get_gives_the_status_and_the_body() {
        let (addr, server) = answer_once("HTTP/1.0 503 Service Unavailable\r\n\r\nnot ready\n");
        assert_eq!(
            http_get(addr, "/readyz").unwrap(),
            (503, "not ready\n".to_string())
        );
        assert!(server
            .join()
            .unwrap()
            .starts_with("GET /readyz HTTP/1.0\r\n"));
    }

    #[test]
    fn a_request_sends_the_token_and_the_body() {
        let (addr, server) =
            answer_once("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"ok\":true}");
        let got = http_request(
            &addr.to_string(),
            "POST",
            "/bindings/orders",
            Some("t0k"),
            r#"{"state":"PAUSED"}"#,
        )
        .unwrap();
        assert_eq!(got, (200, r#"{"ok":true}"#.to_string()));
        let request = server.join().unwrap();
        assert!(
            request.starts_with("POST /bindings/orders HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request.contains("\r\nAuthorization: Bearer t0k\r\n"),
            "{request}"
        );
        assert!(
            request.ends_with("Content-Length: 18\r\n\r\n{\"state\":\"PAUSED\"}"),
            "{request}"
        );
    }
}
