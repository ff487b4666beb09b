//! hickory's connection provider: keeps the Extended DNS Errors of failed responses, and
//! stamps records with the resolver's AD bit for `--dnssec resolver`.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use hickory_resolver::config::ConnectionConfig;
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::xfer::{DnsExchange, DnsHandle};
use hickory_resolver::proto::dnssec::Proof;
use hickory_resolver::proto::op::{DnsRequest, DnsResponse, Edns};
use hickory_resolver::{ConnectionProvider, PoolContext};

use super::diagnosis::FailureLog;

/// hickory's connection provider, which keeps the Extended DNS Errors of failed responses
/// for their diagnosis ([`FailureLog`]), with one addition for
/// [`DnssecMode::TrustResolverAd`](super::DnssecMode::TrustResolverAd): queries ask for DNSSEC (DO and AD bits) and each response's records are stamped with the
/// resolver's verdict (the AD bit) before hickory interprets them. With `trust_ad` false it
/// passes everything through unchanged.
#[derive(Clone)]
pub(super) struct StampingProvider {
    pub(super) runtime: TokioRuntimeProvider,
    pub(super) trust_ad: bool,
    pub(super) failures: Arc<FailureLog>,
}

type ConnFuture = Pin<Box<dyn Future<Output = Result<StampingConn, NetError>> + Send + 'static>>;

impl ConnectionProvider for StampingProvider {
    type Conn = StampingConn;
    type FutureConn = ConnFuture;
    type RuntimeProvider = TokioRuntimeProvider;

    fn new_connection(
        &self,
        ip: IpAddr,
        config: &ConnectionConfig,
        cx: &PoolContext,
    ) -> Result<Self::FutureConn, NetError> {
        let connecting = self.runtime.new_connection(ip, config, cx)?;
        let trust_ad = self.trust_ad;
        let failures = Arc::clone(&self.failures);
        Ok(Box::pin(async move {
            Ok(StampingConn {
                inner: connecting.await?,
                trust_ad,
                failures,
            })
        }))
    }

    fn runtime_provider(&self) -> &Self::RuntimeProvider {
        &self.runtime
    }
}

#[derive(Clone)]
pub(super) struct StampingConn {
    inner: DnsExchange<TokioRuntimeProvider>,
    trust_ad: bool,
    failures: Arc<FailureLog>,
}

impl DnsHandle for StampingConn {
    type Response = BoxStream<'static, Result<DnsResponse, NetError>>;
    type Runtime = TokioRuntimeProvider;

    fn send(&self, mut request: DnsRequest) -> Self::Response {
        let failures = Arc::clone(&self.failures);
        let log = move |response: DnsResponse| {
            failures.record(&response);
            response
        };
        if !self.trust_ad {
            return self.inner.send(request).map(move |r| r.map(&log)).boxed();
        }
        // RFC 3225 §3: DO asks the resolver for DNSSEC data; RFC 6840 §5.7: AD in a query
        // asks it to report, in the response's AD bit, whether it validated the answer.
        request.metadata.authentic_data = true;
        request
            .edns
            .get_or_insert_with(Edns::new)
            .set_dnssec_ok(true);
        self.inner
            .send(request)
            .map(move |r| r.map(&log).map(stamp_proofs))
            .boxed()
    }
}

/// RFC 4035 §3.2.3: a validating resolver sets AD only when every RRset in the answer and
/// authority sections is authentic; without AD nothing in the response was validated.
fn stamp_proofs(mut response: DnsResponse) -> DnsResponse {
    let proof = if response.metadata.authentic_data {
        Proof::Secure
    } else {
        Proof::Insecure
    };
    let message = &mut *response;
    for record in message
        .answers
        .iter_mut()
        .chain(message.authorities.iter_mut())
    {
        record.proof = proof;
    }
    response
}
