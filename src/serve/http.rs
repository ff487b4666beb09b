//! The HTTP side of `mxprobe serve` (hyper, HTTP/1.1): the routes, the caps on what a client
//! may send, and the drain on shutdown.
//!
//! Routes: `GET /probe?target=DOMAIN[&module=NAME]`, `GET /metrics`, `GET /healthz`, `GET /`
//! (a page with a probe form); `HEAD` as `GET`. Everything a client sends is capped: the
//! request head (line and headers) at [`MAX_HEAD_BYTES`] and [`HEAD_TIMEOUT`], the query
//! string at [`MAX_QUERY_BYTES`] (414), a body at [`MAX_BODY_BYTES`] (413) read within
//! [`BODY_TIMEOUT`] (408), at most [`MAX_CONNECTIONS`] connections at once (more wait to be
//! accepted). A malformed target is answered 400 with one line saying why, before any scan.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::modules::DEFAULT_MODULE;
use super::{Exporter, ProbeError, SCRAPE_TIMEOUT_HEADER, wait_for};
use crate::exposition::CONTENT_TYPE as METRICS_CONTENT_TYPE;
use mxprobe_core::domain::DomainName;

/// The longest query string accepted (414 beyond).
pub const MAX_QUERY_BYTES: usize = 1024;
/// The largest request body accepted (413 beyond); no route takes one.
pub const MAX_BODY_BYTES: usize = 1024;
/// The request line and headers, at most (hyper's read buffer; 431 or a closed connection
/// beyond).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The longest a client may take to send the request line and headers.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a client may take to send a body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 512;
/// The longest target accepted (a domain name has at most 253 characters; an IDN in
/// percent-encoded UTF-8 can be longer before it is converted).
pub const MAX_TARGET_BYTES: usize = 512;

type Body = Full<Bytes>;

/// Serves `exporter` on `listener` until `shutdown` resolves, then stops accepting, lets
/// the requests in flight answer for at most `grace`, and returns.
pub async fn serve(
    listener: TcpListener,
    exporter: Arc<Exporter>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&connections).acquire_owned() => permit,
        };
        let Ok(permit) = permit else { break };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        // Out of file descriptors and the like: wait a little rather than spin.
        let Ok((stream, _peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let exporter = Arc::clone(&exporter);
        let service = service_fn(move |req| {
            let exporter = Arc::clone(&exporter);
            async move { Ok::<_, Infallible>(handle(req, &exporter).await) }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEAD_TIMEOUT)
            .max_buf_size(MAX_HEAD_BYTES)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(grace, graceful.shutdown()).await;
}

/// Answers one request.
async fn handle(req: Request<Incoming>, exporter: &Arc<Exporter>) -> Response<Body> {
    let response = route(req, exporter).await;
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        exporter.reject(status.as_u16());
    }
    response
}

async fn route(req: Request<Incoming>, exporter: &Arc<Exporter>) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} is not served here: use GET\n", req.method()),
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let query = req.uri().query().unwrap_or("").to_owned();
    if query.len() > MAX_QUERY_BYTES {
        return text(
            StatusCode::URI_TOO_LONG,
            format!(
                "the query string has {} bytes, at most {MAX_QUERY_BYTES}: give one target \
                 (and a module)\n",
                query.len()
            ),
        );
    }
    let path = req.uri().path().to_owned();
    let scrape_timeout = req.headers().get(SCRAPE_TIMEOUT_HEADER).cloned();
    if let Err(response) = drain_body(req).await {
        return response;
    }
    match path.as_str() {
        "/probe" => probe(exporter, &query, scrape_timeout.as_ref()).await,
        "/metrics" => metrics(exporter.metrics_text()),
        "/healthz" => text(StatusCode::OK, "ok\n".to_owned()),
        "/" => html(exporter),
        _ => text(
            StatusCode::NOT_FOUND,
            format!(
                "{path}: not found; the routes are /probe?target=DOMAIN, /metrics, /healthz and /\n"
            ),
        ),
    }
}

/// Reads and drops the request body, at most [`MAX_BODY_BYTES`] within [`BODY_TIMEOUT`].
async fn drain_body(req: Request<Incoming>) -> Result<(), Response<Body>> {
    let too_large = || {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is over {MAX_BODY_BYTES} bytes; no route takes a body\n"),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let body = Limited::new(req.into_body(), MAX_BODY_BYTES);
    match tokio::time::timeout(BODY_TIMEOUT, body.collect()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Ok(Err(e)) => Err(text(
            StatusCode::BAD_REQUEST,
            format!("the request body could not be read: {e}\n"),
        )),
        Err(_) => Err(text(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} s\n",
                BODY_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// What a `/probe` query asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeQuery {
    /// The domain.
    pub target: DomainName,
    /// The module.
    pub module: String,
}

/// Reads `target` and `module` from a query string; the error is the one-line reason.
pub fn parse_query(query: &str) -> Result<ProbeQuery, String> {
    let mut target: Option<String> = None;
    let mut module: Option<String> = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match &*key {
            "target" => &mut target,
            "module" => &mut module,
            // Other parameters (Prometheus' `params:`) are not ours to refuse.
            _ => continue,
        };
        if slot.is_some() {
            return Err(format!("{key} is given twice: give it once"));
        }
        *slot = Some(value.into_owned());
    }
    let Some(target) = target else {
        return Err(
            "no target: ask /probe?target=DOMAIN (Prometheus: relabel the address to \
             __param_target)"
                .to_owned(),
        );
    };
    if target.len() > MAX_TARGET_BYTES {
        return Err(format!(
            "target has {} bytes: a domain name has at most 253 characters",
            target.len()
        ));
    }
    let shown: String = target.escape_debug().collect();
    if target.contains(['/', ':', '@', '?', '#']) {
        return Err(format!(
            "target \"{shown}\" is not a domain name: give the mail domain alone (example.com), \
             without a scheme, port, path or address"
        ));
    }
    let domain = DomainName::parse(&target)
        .map_err(|e| format!("target \"{shown}\" is not a domain name: {e}"))?;
    let module = module.unwrap_or_else(|| DEFAULT_MODULE.to_owned());
    Ok(ProbeQuery {
        target: domain,
        module,
    })
}

/// The scrape timeout Prometheus sent, in seconds.
fn parse_scrape_timeout(value: Option<&HeaderValue>) -> Result<Option<f64>, String> {
    let Some(value) = value else { return Ok(None) };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(Some)
        .ok_or_else(|| {
            format!(
                "X-Prometheus-Scrape-Timeout-Seconds: {:?} is not a number of seconds above 0",
                String::from_utf8_lossy(value.as_bytes())
            )
        })
}

async fn probe(
    exporter: &Arc<Exporter>,
    query: &str,
    scrape_timeout: Option<&HeaderValue>,
) -> Response<Body> {
    let bad = |reason: String| text(StatusCode::BAD_REQUEST, format!("{reason}\n"));
    let q = match parse_query(query) {
        Ok(q) => q,
        Err(reason) => return bad(reason),
    };
    let scrape_timeout = match parse_scrape_timeout(scrape_timeout) {
        Ok(t) => t,
        Err(reason) => return bad(reason),
    };
    let Some(deadline) = exporter.deadline(&q.module) else {
        return bad(format!(
            "unknown module \"{}\"; the modules are: {}",
            q.module.escape_debug(),
            exporter.module_names()
        ));
    };
    let wait = wait_for(scrape_timeout, deadline);
    match exporter.probe(q.target, &q.module, wait).await {
        Ok(body) => metrics(body),
        Err(e @ ProbeError::UnknownModule(..)) => bad(e.to_string()),
        Err(e @ ProbeError::Full(_)) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
    }
}

fn metrics(body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
    r
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The landing page: what this is, the routes, and a probe form. Module names are checked
/// to be `[A-Za-z0-9_-]` when the configuration is read, so they need no escaping.
fn html(exporter: &Exporter) -> Response<Body> {
    let options: String = exporter
        .module_names()
        .split(", ")
        .map(|m| format!("<option>{m}</option>"))
        .collect();
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>mxprobe exporter</title></head><body>\n\
         <h1>mxprobe exporter</h1>\n\
         <p>A Prometheus exporter of mail domains' MTA-STS, DANE, STARTTLS and TLS-RPT \
         health (mxprobe {version}). Prometheus scrapes \
         <code>/probe?target=DOMAIN</code> for each domain of its configuration.</p>\n\
         <form action=\"/probe\" method=\"get\">\
         <label>Domain <input name=\"target\" placeholder=\"example.com\" required></label> \
         <label>Module <select name=\"module\">{options}</select></label> \
         <button type=\"submit\">Probe</button></form>\n\
         <p><a href=\"/metrics\">/metrics</a>: the exporter's own metrics. \
         <a href=\"/healthz\">/healthz</a>: up.</p>\n</body></html>\n",
        version = env!("CARGO_PKG_VERSION"),
    );
    let mut r = Response::new(Full::new(Bytes::from(page)));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_name_one_target_and_maybe_a_module() {
        let q = parse_query("target=Good.Test&module=no_smtp&foo=bar").unwrap();
        assert_eq!(q.target.as_str(), "good.test");
        assert_eq!(q.module, "no_smtp");
        assert_eq!(parse_query("target=good.test.").unwrap().module, "default");
        // An IDN, percent-encoded UTF-8, becomes its A-labels.
        assert_eq!(
            parse_query("target=b%C3%BCcher.example")
                .unwrap()
                .target
                .as_str(),
            "xn--bcher-kva.example"
        );
        for (query, want) in [
            ("", "no target: ask /probe?target=DOMAIN"),
            ("module=a", "no target"),
            ("target=a.test&target=b.test", "target is given twice"),
            (
                "target=https%3A%2F%2Fexample.com",
                "target \"https://example.com\" is not a domain name: give the mail domain alone",
            ),
            (
                "target=example.com:25",
                "target \"example.com:25\" is not a domain name",
            ),
            (
                "target=192.0.2.1",
                "target \"192.0.2.1\" is not a domain name: ",
            ),
            (
                "target=a%0Ab.test",
                "target \"a\\nb.test\" is not a domain name: ",
            ),
            ("target=", "target \"\" is not a domain name: "),
        ] {
            let err = parse_query(query).unwrap_err();
            assert!(err.starts_with(want), "{query:?}: {err}");
            assert!(!err.contains('\n'), "{query:?}: one line: {err:?}");
        }
        let long = format!("target={}", "a".repeat(600));
        assert!(
            parse_query(&long)
                .unwrap_err()
                .starts_with("target has 600 bytes")
        );
    }

    #[test]
    fn the_scrape_timeout_header_is_a_positive_number() {
        let h = |v: &str| HeaderValue::from_str(v).unwrap();
        assert_eq!(parse_scrape_timeout(None), Ok(None));
        assert_eq!(parse_scrape_timeout(Some(&h("9.5"))), Ok(Some(9.5)));
        for bad in ["0", "-1", "NaN", "inf", "ten"] {
            assert!(parse_scrape_timeout(Some(&h(bad))).is_err(), "{bad}");
        }
    }
}
