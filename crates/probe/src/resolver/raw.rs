//! Direct queries below hickory's cache and validator, for the diagnosis and the fitness
//! check.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ProtocolConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::xfer::DnsHandle;
use hickory_resolver::proto::op::{DnsRequest, DnsRequestOptions, Edns, Message, Query};
use hickory_resolver::proto::rr::{Name, RecordType};
use hickory_resolver::{ConnectionProvider, PoolContext};

/// The EDNS buffer size of the direct queries (the DNS flag day 2020 value).
const RAW_EDNS_PAYLOAD: u16 = 1232;

/// Direct queries to the configured servers with the flags the diagnosis chooses (CD, DO,
/// AD), below hickory's cache and validator, returning the whole response whatever its code.
/// Used only when a lookup failed, and for the fitness check (once per run and TLD).
pub(super) struct RawClient {
    pub(super) servers: Vec<SocketAddr>,
    pub(super) context: Arc<PoolContext>,
    pub(super) runtime: TokioRuntimeProvider,
    pub(super) timeout: Duration,
    pub(super) attempts: usize,
}

impl RawClient {
    /// The response to `name`/`record_type` with DO set (and CD when `checking_disabled`):
    /// UDP first, TCP when truncated; each server in turn, `attempts` rounds. `None` when no
    /// server answered in time.
    pub(super) async fn query(
        &self,
        name: &Name,
        record_type: RecordType,
        checking_disabled: bool,
    ) -> Option<Message> {
        let mut message = Message::query();
        message
            .queries
            .push(Query::query(name.clone(), record_type));
        message.metadata.recursion_desired = true;
        message.metadata.checking_disabled = checking_disabled;
        // RFC 6840 §5.7: ask a validating resolver to say (AD) whether it validated.
        message.metadata.authentic_data = true;
        let mut edns = Edns::new();
        edns.set_max_payload(RAW_EDNS_PAYLOAD).set_dnssec_ok(true);
        message.edns = Some(edns);
        let mut options = DnsRequestOptions::default();
        options.use_edns = true;
        options.edns_set_dnssec_ok = true;
        options.edns_payload_len = RAW_EDNS_PAYLOAD;
        let request = DnsRequest::new(message, options);
        for _ in 0..self.attempts {
            for server in &self.servers {
                let Some(answer) = self
                    .exchange(*server, ProtocolConfig::Udp, request.clone())
                    .await
                else {
                    continue;
                };
                if answer.metadata.truncation
                    && let Some(full) = self
                        .exchange(*server, ProtocolConfig::Tcp, request.clone())
                        .await
                {
                    return Some(full);
                }
                return Some(answer);
            }
        }
        None
    }

    async fn exchange(
        &self,
        server: SocketAddr,
        protocol: ProtocolConfig,
        request: DnsRequest,
    ) -> Option<Message> {
        let mut config = ConnectionConfig::new(protocol);
        config.port = server.port();
        let connecting = self
            .runtime
            .new_connection(server.ip(), &config, &self.context)
            .ok()?;
        let exchange = async {
            let connection = connecting.await.ok()?;
            let response = connection.send(request).next().await?.ok()?;
            Some(response.into_message())
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .ok()
            .flatten()
    }
}

/// The addresses of the configured servers, as the direct queries reach them (each server's
/// UDP port, 53 by default).
pub(super) fn raw_servers(servers: &[NameServerConfig]) -> Vec<SocketAddr> {
    servers
        .iter()
        .map(|s| {
            let port = s
                .connections
                .iter()
                .find(|c| matches!(c.protocol, ProtocolConfig::Udp))
                .map_or(53, |c| c.port);
            SocketAddr::new(s.ip, port)
        })
        .collect()
}
