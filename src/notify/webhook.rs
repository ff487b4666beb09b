//! The webhook channel: one HTTP POST of the alert as JSON (reqwest over the caller's rustls
//! configuration), any 2xx answer meaning delivered. Redirects are never followed (a
//! webhook that moved is a configuration to fix, and following it would carry the headers
//! elsewhere). Extra headers, typically a bearer token, come only from
//! `MXPROBE_WEBHOOK_HEADER_<NAME>` variables ([`headers_from_env`]); their values are marked
//! sensitive and never shown. What a receiver answers is shown only in part (the start of
//! an error body) and with every piece of the URL after the host and every header value cut
//! out, since some receivers echo the request they refused.
//!
//! I/O: HTTP(S) to the configured URL only.

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use percent_encoding::percent_decode_str;

use super::{DeliveryError, NotifyConfigError, is_loopback, one_line, scrub};
use mxprobe_core::alert::Alert;

/// The variable that holds the webhook URL when it is not given with `--webhook` (the URL
/// often is the secret: Slack, Discord, Teams Workflows).
pub const WEBHOOK_URL_VAR: &str = "MXPROBE_WEBHOOK_URL";

/// The prefix of the variables that set webhook headers: `MXPROBE_WEBHOOK_HEADER_X_API_KEY`
/// sets `x-api-key`.
pub const WEBHOOK_HEADER_PREFIX: &str = "MXPROBE_WEBHOOK_HEADER_";

/// Headers mxprobe sets itself (or the HTTP stack does), which configuration cannot replace.
const RESERVED_HEADERS: [&str; 5] = [
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
];

/// How much of an error response's body is read to explain the status.
const ERROR_BODY_READ: usize = 1024;

/// How many characters of an error response's body go into the error.
const ERROR_BODY_SHOWN: usize = 200;

/// Pieces of a URL (path segments, query keys and values) shorter than this are not cut out
/// of what a receiver answers: they are words such as `api` or `v1`, not secrets.
const SHORTEST_SECRET_PIECE: usize = 4;

/// What the POST body looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WebhookFormat {
    /// The alert JSON as [`Alert`] serializes it (documented schema, versioned).
    #[default]
    Json,
    /// `{"text": "<Alert::text()>"}`: Slack incoming webhooks, Microsoft Teams incoming
    /// webhooks and Workflows.
    Text,
}

/// A webhook: where to POST, in which format, with which extra headers.
pub struct Webhook {
    url: Url,
    target: String,
    format: WebhookFormat,
    headers: HeaderMap,
    /// What an answer must not repeat ([`secrets_of`]).
    secrets: Vec<String>,
    timeout: Duration,
    client: reqwest::Client,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL and the header values may be secrets: only the target and the names show.
        let names: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("Webhook")
            .field("target", &self.target)
            .field("format", &self.format)
            .field("header_names", &names)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// A webhook posting to `url`. `headers` are added to every request (validated here;
    /// see [`headers_from_env`]); `timeout` bounds a whole attempt (connection, TLS, request,
    /// answer); `tls` is the client configuration for https URLs.
    ///
    /// Plain `http://` is accepted only for loopback hosts (`127.0.0.0/8`, `::1`,
    /// `localhost`): elsewhere the alert and the headers would cross the network in clear.
    /// System proxies (`HTTPS_PROXY`, …) are used except for loopback URLs.
    pub fn new(
        url: Url,
        format: WebhookFormat,
        headers: Vec<(String, String)>,
        timeout: Duration,
        tls: rustls::ClientConfig,
    ) -> Result<Self, NotifyConfigError> {
        let target = target_of(&url);
        let Some(host) = url.host_str() else {
            return Err(NotifyConfigError::WebhookNoHost {
                scheme: url.scheme().to_owned(),
            });
        };
        let loopback = is_loopback(host);
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => return Err(NotifyConfigError::WebhookPlainHttp { target }),
            other => {
                return Err(NotifyConfigError::WebhookScheme {
                    target,
                    scheme: other.to_owned(),
                });
            }
        }
        let headers = header_map(headers)?;
        let secrets = secrets_of(&url, &headers);
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .referer(false)
            .timeout(timeout)
            .user_agent(concat!("mxprobe/", env!("CARGO_PKG_VERSION")));
        if loopback {
            // A proxy cannot reach this machine's loopback receiver.
            builder = builder.no_proxy();
        }
        let client = builder
            .build()
            .map_err(|e| NotifyConfigError::WebhookClient {
                target: target.clone(),
                reason: describe(e),
            })?;
        Ok(Self {
            url,
            target,
            format,
            headers,
            secrets,
            timeout,
            client,
        })
    }

    /// The URL's scheme, host and port, then `/…` when it has a path or query: the part of
    /// a webhook URL that is never a secret, for messages and logs.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// One POST of `alert`.
    pub async fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let body = self.body(alert)?;
        let sent = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .headers(self.headers.clone())
            .body(body)
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(e) if e.is_timeout() => {
                return Err(DeliveryError::WebhookTimeout {
                    target: self.target.clone(),
                    timeout: self.timeout,
                });
            }
            Err(e) => {
                return Err(DeliveryError::WebhookRequest {
                    target: self.target.clone(),
                    reason: describe(e),
                });
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // The start of the body often says why (Slack: `invalid_token`). It is only an
        // explanation: a failure to read it does not change the error.
        let mut start = Vec::new();
        let mut cut = false;
        while start.len() < ERROR_BODY_READ {
            match response.chunk().await {
                Ok(Some(chunk)) => start.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        if start.len() >= ERROR_BODY_READ {
            // A secret cut in two at the end would escape the scrubbing: drop as many bytes
            // as the longest secret has.
            let longest = self.secrets.iter().map(String::len).max().unwrap_or(0);
            start.truncate(ERROR_BODY_READ.saturating_sub(longest));
            cut = true;
        }
        let text = scrub(&String::from_utf8_lossy(&start), &self.secrets);
        let mut body = one_line(&text, ERROR_BODY_SHOWN);
        if cut && !body.is_empty() && !body.ends_with('…') {
            body.push('…');
        }
        Err(DeliveryError::WebhookStatus {
            target: self.target.clone(),
            status: status.as_u16(),
            body,
        })
    }

    /// The POST body in this webhook's format.
    fn body(&self, alert: &Alert) -> Result<Vec<u8>, DeliveryError> {
        let encoded = match self.format {
            WebhookFormat::Json => serde_json::to_vec(alert),
            WebhookFormat::Text => serde_json::to_vec(&serde_json::json!({ "text": alert.text() })),
        };
        encoded.map_err(|e| DeliveryError::AlertJson {
            channel: "webhook",
            target: self.target.clone(),
            reason: e.to_string(),
        })
    }
}

/// The webhook headers set by `MXPROBE_WEBHOOK_HEADER_<NAME>=value` among `vars` (pass
/// `std::env::vars()`): NAME with `_` turned into `-`, lower-cased, sorted by name. Other
/// variables are ignored. Names and values are validated as [`Webhook::new`] does; no error
/// shows a value.
pub fn headers_from_env(
    vars: impl Iterator<Item = (String, String)>,
) -> Result<Vec<(String, String)>, NotifyConfigError> {
    let mut headers = Vec::new();
    for (var, value) in vars {
        let Some(suffix) = var.strip_prefix(WEBHOOK_HEADER_PREFIX) else {
            continue;
        };
        if suffix.is_empty() {
            return Err(NotifyConfigError::HeaderVariableEmpty { var });
        }
        headers.push((suffix.replace('_', "-"), value));
    }
    let map = header_map(headers)?;
    let mut headers: Vec<(String, String)> = map
        .iter()
        .map(|(name, value)| {
            let value = value
                .to_str()
                .expect("header_map accepts only values made from a &str")
                .to_owned();
            (name.as_str().to_owned(), value)
        })
        .collect();
    headers.sort();
    Ok(headers)
}

/// Validates names and values and marks the values sensitive (kept out of reqwest's Debug).
fn header_map(headers: Vec<(String, String)>) -> Result<HeaderMap, NotifyConfigError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
            return Err(NotifyConfigError::HeaderName { name });
        };
        if RESERVED_HEADERS.contains(&header.as_str()) {
            return Err(NotifyConfigError::HeaderReserved {
                name: header.as_str().to_owned(),
            });
        }
        let Ok(mut value) = HeaderValue::from_str(&value) else {
            return Err(NotifyConfigError::HeaderValue {
                name: header.as_str().to_owned(),
            });
        };
        value.set_sensitive(true);
        if map.contains_key(&header) {
            return Err(NotifyConfigError::HeaderDuplicate {
                name: header.as_str().to_owned(),
            });
        }
        map.insert(header, value);
    }
    Ok(map)
}

/// Everything of the URL and the headers that an answer must not repeat: the whole URL;
/// what follows the host (path, query, fragment) whole and piece by piece (each path
/// segment, query key and value of [`SHORTEST_SECRET_PIECE`] characters or more, as written
/// and percent-decoded); the user info (and its Basic authorization form); every header
/// value, whole and word by word.
fn secrets_of(url: &Url, headers: &HeaderMap) -> Vec<String> {
    let mut whole = vec![url.as_str().to_owned()];
    let mut pieces = Vec::new();
    let mut after_host = url.path().to_owned();
    pieces.extend(url.path().split('/').map(str::to_owned));
    if let Some(query) = url.query() {
        after_host.push('?');
        after_host.push_str(query);
        pieces.extend(query.split(['&', '=']).map(str::to_owned));
    }
    if let Some(fragment) = url.fragment() {
        after_host.push('#');
        after_host.push_str(fragment);
        pieces.push(fragment.to_owned());
    }
    if after_host != "/" {
        whole.push(after_host);
    }
    if !url.username().is_empty() || url.password().is_some() {
        let password = url.password().unwrap_or_default();
        pieces.push(url.username().to_owned());
        pieces.push(password.to_owned());
        let user_info = format!("{}:{password}", url.username());
        let decoded = percent_decode_str(&user_info)
            .decode_utf8_lossy()
            .into_owned();
        whole.push(BASE64.encode(&user_info));
        whole.push(BASE64.encode(decoded));
    }
    for value in headers.values() {
        // Values are checked to be visible ASCII when the map is built.
        let value = String::from_utf8_lossy(value.as_bytes());
        pieces.extend(value.split_whitespace().map(str::to_owned));
        whole.push(value.into_owned());
    }
    let decoded: Vec<String> = pieces
        .iter()
        .map(|piece| percent_decode_str(piece).decode_utf8_lossy().into_owned())
        .collect();
    pieces.extend(decoded);
    pieces.retain(|piece| piece.chars().count() >= SHORTEST_SECRET_PIECE);
    whole.extend(pieces);
    whole.retain(|secret| !secret.is_empty());
    whole.sort();
    whole.dedup();
    whole
}

/// Scheme, host and port, then `/…` if anything followed: no user info, path, query or
/// fragment, which is where webhook URLs keep their secrets.
fn target_of(url: &Url) -> String {
    let mut target = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        target.push_str(&format!(":{port}"));
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        target.push_str("/…");
    }
    target
}

/// reqwest's error without the URL (it may hold secrets), with its causes.
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut out = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;

    use super::*;
    use crate::notify::test_support::{alert, client_tls, far};
    use crate::notify::{Channel, RetryPolicy, deliver_with_retry};

    /// One request as the receiver saw it.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        path_and_query: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        answered: u16,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }
    }

    /// A loopback HTTP/1.1 receiver that answers the given statuses in turn (the last one
    /// from then on) and records every request. Stops when dropped.
    struct Receiver {
        addr: SocketAddr,
        seen: Arc<Mutex<Vec<Seen>>>,
        task: JoinHandle<()>,
    }

    impl Drop for Receiver {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    /// What the receiver answers with.
    #[derive(Clone, Copy)]
    enum Answer {
        /// This body.
        Fixed(&'static str),
        /// The request it received, as a careless receiver's error page shows it: the
        /// request line, every header and the body.
        Echo,
    }

    impl Receiver {
        async fn start(statuses: &[u16], answer_body: &'static str) -> Self {
            Self::start_with(statuses, Answer::Fixed(answer_body)).await
        }

        async fn start_with(statuses: &[u16], answer: Answer) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let seen = Arc::new(Mutex::new(Vec::new()));
            let statuses = Arc::new(statuses.to_vec());
            let record = seen.clone();
            let task = tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let record = record.clone();
                    let statuses = statuses.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |request: Request<Incoming>| {
                            let record = record.clone();
                            let statuses = statuses.clone();
                            async move {
                                let (parts, body) = request.into_parts();
                                let body = body.collect().await.unwrap().to_bytes().to_vec();
                                let answer_body = match answer {
                                    Answer::Fixed(text) => text.to_owned(),
                                    Answer::Echo => {
                                        let mut echo =
                                            format!("{} {} HTTP/1.1\r\n", parts.method, parts.uri);
                                        for (name, value) in &parts.headers {
                                            echo.push_str(&format!(
                                                "{name}: {}\r\n",
                                                value.to_str().unwrap()
                                            ));
                                        }
                                        echo.push_str("\r\n");
                                        echo.push_str(&String::from_utf8_lossy(&body));
                                        echo
                                    }
                                };
                                let mut seen = record.lock().unwrap();
                                let status = statuses[seen.len().min(statuses.len() - 1)];
                                seen.push(Seen {
                                    method: parts.method.to_string(),
                                    path_and_query: parts.uri.to_string(),
                                    headers: parts
                                        .headers
                                        .iter()
                                        .map(|(n, v)| {
                                            (n.to_string(), v.to_str().unwrap().to_owned())
                                        })
                                        .collect(),
                                    body,
                                    answered: status,
                                });
                                let mut response = Response::builder().status(status);
                                if (300..400).contains(&status) {
                                    response = response.header("location", "/moved");
                                }
                                Ok::<_, Infallible>(
                                    response.body(Full::new(Bytes::from(answer_body))).unwrap(),
                                )
                            }
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
            Self { addr, seen, task }
        }

        fn url(&self, path_and_query: &str) -> Url {
            Url::parse(&format!("http://{}{path_and_query}", self.addr)).unwrap()
        }

        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    fn webhook(url: Url, format: WebhookFormat, headers: Vec<(String, String)>) -> Webhook {
        Webhook::new(url, format, headers, Duration::from_secs(5), client_tls()).unwrap()
    }

    fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    const QUICK: RetryPolicy = RetryPolicy {
        attempts: 3,
        initial: Duration::from_millis(10),
        max: Duration::from_millis(20),
    };

    #[tokio::test]
    async fn json_body_is_the_alert_with_the_env_headers() {
        let receiver = Receiver::start(&[200], "ok").await;
        let headers = headers_from_env(env(&[
            ("PATH", "/usr/bin"),
            (
                "MXPROBE_WEBHOOK_HEADER_AUTHORIZATION",
                "Bearer s3cret-token",
            ),
            ("MXPROBE_WEBHOOK_HEADER_X_ROUTING_KEY", "mail-ops"),
        ]))
        .unwrap();
        assert_eq!(
            headers,
            [
                ("authorization".to_owned(), "Bearer s3cret-token".to_owned()),
                ("x-routing-key".to_owned(), "mail-ops".to_owned()),
            ]
        );
        let hook = webhook(receiver.url("/alerts"), WebhookFormat::Json, headers);
        let alert = alert();
        hook.deliver(&alert).await.unwrap();

        let seen = receiver.seen();
        assert_eq!(seen.len(), 1);
        let request = &seen[0];
        assert_eq!(request.method, "POST");
        assert_eq!(request.path_and_query, "/alerts");
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.header("authorization"), Some("Bearer s3cret-token"));
        assert_eq!(request.header("x-routing-key"), Some("mail-ops"));
        assert_eq!(request.body, serde_json::to_vec(&alert).unwrap());
        let back: Alert = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(back, alert);
    }

    #[tokio::test]
    async fn text_body_is_what_slack_and_teams_take() {
        let receiver = Receiver::start(&[204], "").await;
        let hook = webhook(
            receiver.url("/services/T0/B0/x"),
            WebhookFormat::Text,
            vec![],
        );
        let alert = alert();
        hook.deliver(&alert).await.unwrap();

        let seen = receiver.seen();
        assert_eq!(seen.len(), 1);
        let expected = format!(
            "{{\"text\":{}}}",
            serde_json::to_string(&alert.text()).unwrap()
        );
        assert_eq!(String::from_utf8(seen[0].body.clone()).unwrap(), expected);
        assert_eq!(seen[0].header("content-type"), Some("application/json"));
        let value: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
        assert_eq!(value["text"].as_str(), Some(alert.text().as_str()));
    }

    #[tokio::test]
    async fn two_500s_then_200_is_delivered_on_the_third_attempt() {
        let receiver = Receiver::start(&[500, 500, 200], "busy").await;
        let channel = Channel::Webhook(webhook(receiver.url("/hook"), WebhookFormat::Json, vec![]));
        deliver_with_retry(&channel, &alert(), &QUICK, far())
            .await
            .unwrap();

        let seen = receiver.seen();
        let answered: Vec<u16> = seen.iter().map(|s| s.answered).collect();
        assert_eq!(answered, [500, 500, 200]);
        let accepted: Vec<&Seen> = seen.iter().filter(|s| s.answered == 200).collect();
        assert_eq!(accepted.len(), 1);
        assert_eq!(accepted[0].body, serde_json::to_vec(&alert()).unwrap());
    }

    #[tokio::test]
    async fn retries_end_with_the_last_error() {
        let receiver = Receiver::start(&[502, 503], "try later").await;
        let channel = Channel::Webhook(webhook(receiver.url("/hook"), WebhookFormat::Json, vec![]));
        let err = deliver_with_retry(&channel, &alert(), &QUICK, far())
            .await
            .unwrap_err();
        assert_eq!(receiver.seen().len(), 3);
        let target = format!("http://{}/…", receiver.addr);
        assert!(
            matches!(&err, DeliveryError::WebhookStatus { status: 503, body, target: t }
                if body == "try later" && *t == target),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "webhook {target}: the receiver answered HTTP 503 (try later); the receiver \
                 failed or was busy; a later attempt may succeed"
            )
        );
    }

    #[tokio::test]
    async fn a_404_is_permanent_and_the_url_secrets_stay_out_of_the_error() {
        let receiver = Receiver::start(&[404], "no_service").await;
        let url = receiver.url("/services/T123/B456/SeCrEtPaTh?sig=TopSecretSig&token=abc");
        let headers = vec![("Authorization".to_owned(), "Bearer hunter2".to_owned())];
        let hook = webhook(url, WebhookFormat::Text, headers);
        let debug = format!("{hook:?}");
        let channel = Channel::Webhook(hook);
        let err = deliver_with_retry(&channel, &alert(), &QUICK, far())
            .await
            .unwrap_err();

        assert_eq!(receiver.seen().len(), 1, "a 404 is not retried");
        assert!(
            matches!(err, DeliveryError::WebhookStatus { status: 404, .. }),
            "{err:?}"
        );
        assert!(err.is_permanent());
        let shown = format!("{err} {err:?} {debug} {}", channel.target());
        assert!(
            err.to_string().ends_with(
                "answered HTTP 404 (no_service); check the URL: the receiver does not know it"
            ),
            "{err}"
        );
        assert!(shown.contains("no_service"), "{shown}");
        for secret in [
            "SeCrEtPaTh",
            "TopSecretSig",
            "sig=",
            "token",
            "T123",
            "hunter2",
        ] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert!(debug.contains("authorization"), "{debug}");
    }

    #[tokio::test]
    async fn a_receiver_echoing_the_request_does_not_get_url_or_headers_into_the_error() {
        let url = "/services/T123/B456/SeCrEtPaTh?sig=TopSecretSig&token=abc%2Fdef";
        for status in [400, 500] {
            let receiver = Receiver::start_with(&[status], Answer::Echo).await;
            let headers = vec![
                (
                    "authorization".to_owned(),
                    "Bearer hunter2-token".to_owned(),
                ),
                ("x-api-key".to_owned(), "k3y-value".to_owned()),
            ];
            let hook = webhook(receiver.url(url), WebhookFormat::Json, headers);
            let err = hook.deliver(&alert()).await.unwrap_err();
            // The receiver did echo them.
            let seen = receiver.seen();
            assert_eq!(seen[0].path_and_query, url);
            assert_eq!(
                seen[0].header("authorization"),
                Some("Bearer hunter2-token")
            );
            let shown = format!("{err} {err:?}");
            assert!(
                shown.contains(&format!("answered HTTP {status} (POST … HTTP/1.1")),
                "{shown}"
            );
            for secret in [
                "SeCrEtPaTh",
                "TopSecretSig",
                "T123",
                "B456",
                "hunter2",
                "k3y-value",
                "abc%2Fdef",
                "abc/def",
                "services",
            ] {
                assert!(!shown.contains(secret), "{secret} leaked: {shown}");
            }
        }
    }

    #[test]
    fn secrets_of_a_url_cover_its_pieces_decoded_and_its_user_info() {
        let url =
            Url::parse("https://bob:pa%24%24@hooks.example/a/LongSegment%20X?key=Value1&v=1#frag")
                .unwrap();
        let secrets = secrets_of(
            &url,
            &header_map(vec![("x-token".to_owned(), "T0k 3n42".to_owned())]).unwrap(),
        );
        for expected in [
            "/a/LongSegment%20X?key=Value1&v=1#frag",
            "LongSegment%20X",
            "LongSegment X",
            "Value1",
            "frag",
            "pa%24%24",
            "pa$$",
            "T0k 3n42",
            "3n42",
            "Ym9iOnBhJTI0JTI0",
            "Ym9iOnBhJCQ=",
        ] {
            assert!(
                secrets.contains(&expected.to_owned()),
                "{expected} not in {secrets:?}"
            );
        }
        // Short words are not secrets.
        for word in ["a", "v", "1", "key", "bob", "T0k"] {
            assert!(!secrets.contains(&word.to_owned()), "{word} in {secrets:?}");
        }
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let receiver = Receiver::start(&[302, 200], "").await;
        let hook = webhook(receiver.url("/old"), WebhookFormat::Json, vec![]);
        let err = hook.deliver(&alert()).await.unwrap_err();
        assert!(
            matches!(err, DeliveryError::WebhookStatus { status: 302, .. }),
            "{err:?}"
        );
        assert!(err.is_permanent());
        let seen = receiver.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].path_and_query, "/old");
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_transient_request_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let url = Url::parse(&format!("http://{addr}/hook?key=k3y")).unwrap();
        let err = webhook(url, WebhookFormat::Json, vec![])
            .deliver(&alert())
            .await
            .unwrap_err();
        let DeliveryError::WebhookRequest { target, reason } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(*target, format!("http://{addr}/…"));
        assert!(reason.contains("onnect"), "{reason}");
        assert!(!err.to_string().contains("k3y"), "{err}");
        assert!(!err.is_permanent());
    }

    #[tokio::test]
    async fn a_silent_receiver_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Accepts and holds connections without ever answering.
        let holder = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let url = Url::parse(&format!("http://{addr}/hook")).unwrap();
        let hook = Webhook::new(
            url,
            WebhookFormat::Json,
            vec![],
            Duration::from_millis(300),
            client_tls(),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let err = hook.deliver(&alert()).await.unwrap_err();
        holder.abort();
        assert!(
            matches!(err, DeliveryError::WebhookTimeout { timeout, .. }
                if timeout == Duration::from_millis(300)),
            "{err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!err.is_permanent());
    }

    #[test]
    fn urls_are_checked_and_shown_without_secrets() {
        let new = |url: &str| {
            Webhook::new(
                Url::parse(url).unwrap(),
                WebhookFormat::Json,
                vec![],
                Duration::from_secs(1),
                client_tls(),
            )
        };
        let ok = new("https://user:pw@hooks.example.com:8443/services/T/B/secret?x=1#f").unwrap();
        assert_eq!(ok.target(), "https://hooks.example.com:8443/…");
        assert_eq!(
            new("https://hooks.example.com").unwrap().target(),
            "https://hooks.example.com"
        );
        assert_eq!(
            new("http://[::1]:8080/a").unwrap().target(),
            "http://[::1]:8080/…"
        );
        assert_eq!(
            new("http://localhost/a").unwrap().target(),
            "http://localhost/…"
        );
        assert_eq!(
            new("http://127.0.0.2/").unwrap().target(),
            "http://127.0.0.2"
        );

        let err = new("http://hooks.example.com/services/secret").unwrap_err();
        assert!(
            matches!(&err, NotifyConfigError::WebhookPlainHttp { target }
                if target == "http://hooks.example.com/…"),
            "{err:?}"
        );
        let err = new("ftp://files.example.com/drop").unwrap_err();
        assert!(
            matches!(&err, NotifyConfigError::WebhookScheme { scheme, .. } if scheme == "ftp"),
            "{err:?}"
        );
        let err = new("mailto:ops@example.com").unwrap_err();
        assert!(
            matches!(err, NotifyConfigError::WebhookNoHost { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn header_variables_are_validated_without_showing_values() {
        type Vars = &'static [(&'static str, &'static str)];
        let cases: [(&str, Vars, &str); 5] = [
            (
                "empty name",
                &[("MXPROBE_WEBHOOK_HEADER_", "v")],
                "the variable MXPROBE_WEBHOOK_HEADER_ names no header",
            ),
            (
                "bad name",
                &[("MXPROBE_WEBHOOK_HEADER_X(Y)", "v")],
                "\"X(Y)\" is not an HTTP header name",
            ),
            (
                "bad value",
                &[(
                    "MXPROBE_WEBHOOK_HEADER_AUTHORIZATION",
                    "Bearer abc\r\nX-Evil: 1",
                )],
                "the value of webhook header authorization is not a valid HTTP header value",
            ),
            (
                "reserved",
                &[("MXPROBE_WEBHOOK_HEADER_CONTENT_TYPE", "text/plain")],
                "webhook header content-type is set by mxprobe itself",
            ),
            (
                "duplicate",
                &[
                    ("MXPROBE_WEBHOOK_HEADER_X_KEY", "a"),
                    ("MXPROBE_WEBHOOK_HEADER_x_key", "b"),
                ],
                "webhook header x-key is given twice",
            ),
        ];
        for (name, vars, expected) in cases {
            let err = headers_from_env(env(vars)).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{name}: {err}");
            assert!(!err.contains("abc"), "{name}: {err}");
        }
        assert_eq!(headers_from_env(env(&[("HOME", "/root")])).unwrap(), []);
    }
}
