//! The lab's request handler: routes each query to its zone, applies the failure names, and
//! answers as an authoritative server, a validating resolver or a broken one.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hickory_server::net::NetError;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{
    Edns, Header, HeaderCounts, Message, MessageType, Metadata, ResponseCode,
};
use hickory_server::proto::rr::rdata::opt::EdnsOption;
use hickory_server::proto::rr::{LowerName, Record, RecordType};
use hickory_server::proto::serialize::binary::{BinDecoder, BinEncodable, BinEncoder};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{Catalog, MessageResponse, MessageResponseBuilder, Queries};

use super::BrokenResolver;
use super::zone::ZoneTrust;

/// How the lab's request handler answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// As the authoritative server of every lab zone.
    Authoritative,
    /// As a validating recursive resolver would (see the module documentation).
    ValidatingResolver,
    /// As a broken resolver would.
    Broken(BrokenResolver),
}

pub(super) struct Zone {
    pub(super) catalog: Catalog,
    pub(super) trust: ZoneTrust,
}

/// The zones and failure names, shared by every server of one lab.
pub(super) struct Zones {
    pub(super) zones: HashMap<LowerName, Zone>,
    pub(super) servfail: Vec<LowerName>,
    pub(super) no_answer: Vec<LowerName>,
}

/// Routes each query to the zone that must answer it and applies the failure names.
pub(super) struct LabHandler {
    pub(super) zones: Arc<Zones>,
    pub(super) mode: Mode,
    pub(super) queries: Arc<AtomicU64>,
}

impl Zones {
    /// The zone that answers `name`/`record_type`: the closest enclosing zone, except that a
    /// DS query at a zone apex goes to the parent (RFC 4035 §3.1.4.1).
    fn zone_for(&self, name: &LowerName, record_type: RecordType) -> Option<&Zone> {
        let mut current = name.clone();
        if record_type == RecordType::DS && !current.is_root() && self.zones.contains_key(&current)
        {
            current = current.base_name();
        }
        loop {
            if let Some(zone) = self.zones.get(&current) {
                return Some(zone);
            }
            if current.is_root() {
                return None;
            }
            current = current.base_name();
        }
    }
}

fn at_or_below(list: &[LowerName], name: &LowerName) -> bool {
    list.iter().any(|n| n.zone_of(name))
}

#[async_trait::async_trait]
impl RequestHandler for LabHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let Ok(info) = request.request_info() else {
            return send_error(request, ResponseCode::FormErr, response_handle).await;
        };
        let name = info.query.name().clone();
        let record_type = info.query.query_type();
        if self.mode == Mode::Broken(BrokenResolver::NxdomainToAll) {
            return send_error(request, ResponseCode::NXDomain, response_handle).await;
        }
        let zones = &self.zones;
        if at_or_below(&zones.no_answer, &name) {
            return silent(request);
        }
        if at_or_below(&zones.servfail, &name) {
            return send_error(request, ResponseCode::ServFail, response_handle).await;
        }
        let Some(zone) = zones.zone_for(&name, record_type) else {
            return send_error(request, ResponseCode::Refused, response_handle).await;
        };
        match self.mode {
            Mode::Authoritative | Mode::Broken(BrokenResolver::NxdomainToAll) => {
                zone.catalog
                    .handle_request::<R, T>(request, response_handle)
                    .await
            }
            Mode::Broken(BrokenResolver::StripDnssec) => {
                let handle = Strip {
                    inner: response_handle,
                };
                zone.catalog
                    .handle_request::<Strip<R>, T>(request, handle)
                    .await
            }
            Mode::ValidatingResolver => {
                let asks_dnssec = request.metadata.authentic_data
                    || request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
                // RFC 4035 §5.5: a validating resolver answers SERVFAIL for bogus data unless
                // the client set CD; with an Extended DNS Error saying why (RFC 8914).
                if zone.trust.is_bogus() && !request.metadata.checking_disabled {
                    let ede = if zone.trust == ZoneTrust::Expired {
                        EDE_SIGNATURE_EXPIRED
                    } else {
                        EDE_DNSSEC_BOGUS
                    };
                    return send_servfail_with_ede(request, ede, response_handle).await;
                }
                let handle = SetAd {
                    inner: response_handle,
                    ad: asks_dnssec && zone.trust == ZoneTrust::Secure,
                };
                zone.catalog
                    .handle_request::<SetAd<R>, T>(request, handle)
                    .await
            }
        }
    }
}

/// RFC 8914 INFO-CODEs the lab's validating resolver sends with SERVFAIL.
const EDE_DNSSEC_BOGUS: u16 = 6;
const EDE_SIGNATURE_EXPIRED: u16 = 7;

async fn send_servfail_with_ede<R: ResponseHandler>(
    request: &Request,
    code: u16,
    mut response_handle: R,
) -> ResponseInfo {
    let mut edns = Edns::new();
    edns.options_mut().insert(EdnsOption::Unknown(
        mxprobe_core::dns::chain::EDE_OPTION_CODE,
        code.to_be_bytes().to_vec(),
    ));
    let response = MessageResponseBuilder::new(&request.queries, Some(&edns))
        .error_msg(&request.metadata, ResponseCode::ServFail);
    match response_handle.send_response(response).await {
        Ok(info) => info,
        Err(_) => silent(request),
    }
}

/// Removes every RRSIG, NSEC and NSEC3 record from a response before sending it, as a
/// resolver that strips DNSSEC does.
#[derive(Clone)]
struct Strip<R> {
    inner: R,
}

#[async_trait::async_trait]
impl<R: ResponseHandler> ResponseHandler for Strip<R> {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let mut wire = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut wire);
        response.destructive_emit(&mut encoder)?;
        let message = Message::from_vec(&wire)?;
        let keep = |records: Vec<Record>| -> Vec<Record> {
            records
                .into_iter()
                .filter(|r| {
                    !matches!(
                        r.record_type(),
                        RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3
                    )
                })
                .collect()
        };
        let answers = keep(message.answers);
        let authorities = keep(message.authorities);
        let additionals = keep(message.additionals);
        let mut asked = Vec::new();
        let mut encoder = BinEncoder::new(&mut asked);
        for query in &message.queries {
            query.emit(&mut encoder)?;
        }
        let queries = Queries::read(&mut BinDecoder::new(&asked), message.queries.len())?;
        let stripped = MessageResponseBuilder::new(&queries, message.edns.as_ref()).build(
            message.metadata,
            answers.iter(),
            authorities.iter(),
            std::iter::empty(),
            additionals.iter(),
        );
        self.inner.send_response(stripped).await
    }
}

/// Sets the AD bit of the response (and RA, as a recursive resolver would).
#[derive(Clone)]
struct SetAd<R> {
    inner: R,
    ad: bool,
}

#[async_trait::async_trait]
impl<R: ResponseHandler> ResponseHandler for SetAd<R> {
    async fn send_response<'a>(
        &mut self,
        mut response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let metadata = response.metadata_mut();
        metadata.authentic_data = self.ad;
        metadata.recursion_available = true;
        self.inner.send_response(response).await
    }
}

async fn send_error<R: ResponseHandler>(
    request: &Request,
    code: ResponseCode,
    mut response_handle: R,
) -> ResponseInfo {
    let edns = request.edns.as_ref().map(|_| Edns::new());
    let response = MessageResponseBuilder::new(&request.queries, edns.as_ref())
        .error_msg(&request.metadata, code);
    match response_handle.send_response(response).await {
        Ok(info) => info,
        Err(_) => silent(request),
    }
}

/// The record of a query left unanswered.
fn silent(request: &Request) -> ResponseInfo {
    let mut metadata = Metadata::new(
        request.metadata.id,
        MessageType::Response,
        request.metadata.op_code,
    );
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}
