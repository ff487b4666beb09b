//! hickory's answers and errors as the [`Lookup`] outcomes of [`mxprobe_core::dns`].

use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::dnssec::Proof;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};

use mxprobe_core::dns::{DnssecStatus, Lookup};

/// A name as mxprobe writes names: lower-case, no trailing dot, `"."` for the root.
pub(super) fn name_text(name: &Name) -> String {
    if name.is_root() {
        return ".".to_owned();
    }
    let text = name.to_ascii().to_ascii_lowercase();
    text.strip_suffix('.').map(str::to_owned).unwrap_or(text)
}

fn proof_status(proof: Proof) -> DnssecStatus {
    match proof {
        Proof::Secure => DnssecStatus::Secure,
        Proof::Insecure => DnssecStatus::Insecure,
        Proof::Bogus => DnssecStatus::Bogus,
        Proof::Indeterminate => DnssecStatus::Indeterminate,
    }
}

/// The status of a set of records, RRSIGs left out (their proof is not the RRset's).
fn records_status<'r>(records: impl IntoIterator<Item = &'r Record>) -> DnssecStatus {
    DnssecStatus::combine(
        records
            .into_iter()
            .filter(|r| r.record_type() != RecordType::RRSIG)
            .map(|r| proof_status(r.proof)),
    )
}

/// Turns hickory's outcome into a [`Lookup`]. Positive answers: the records of the asked
/// type, the CNAME chain from the asked name, and the weakest proof among them. Negative
/// answers: NXDOMAIN vs NODATA from the response code, the status from the proofs of the
/// authority records (SOA, NSEC/NSEC3) that carry the denial (RFC 4035 §5.4).
pub(super) fn classify<T>(
    asked: &Name,
    record_type: RecordType,
    result: Result<hickory_resolver::lookup::Lookup, NetError>,
    convert: impl Fn(&RData) -> Option<T>,
) -> Lookup<T> {
    match result {
        Ok(lookup) => {
            let answers = lookup.answers();
            let mut cname_chain = Vec::new();
            let mut used: Vec<&Record> = Vec::new();
            let mut current = asked.clone();
            // Each step must consume a distinct CNAME, so the walk ends within
            // `answers.len()` steps even on a loop in the data.
            for _ in 0..answers.len() {
                let Some(cname) = answers
                    .iter()
                    .find(|r| r.name == current && matches!(r.data, RData::CNAME(_)))
                else {
                    break;
                };
                let RData::CNAME(target) = &cname.data else {
                    break;
                };
                used.push(cname);
                current = target.0.clone();
                cname_chain.push(name_text(&current));
            }
            let typed: Vec<&Record> = answers
                .iter()
                .filter(|r| r.record_type() == record_type)
                .collect();
            let dnssec = records_status(used.iter().copied().chain(typed.iter().copied()));
            let records: Vec<T> = typed.iter().filter_map(|r| convert(&r.data)).collect();
            if records.is_empty() {
                Lookup::NoData { dnssec }
            } else {
                Lookup::Records {
                    records,
                    dnssec,
                    cname_chain,
                }
            }
        }
        Err(error) => classify_error(error),
    }
}

fn classify_error<T>(error: NetError) -> Lookup<T> {
    match error {
        NetError::Dns(DnsError::NoRecordsFound(no_records)) => {
            let dnssec = no_records
                .authorities
                .as_deref()
                .map_or(DnssecStatus::Indeterminate, records_status);
            negative(no_records.response_code, dnssec)
        }
        NetError::Dns(DnsError::Nsec {
            response, proof, ..
        }) => match proof {
            Proof::Bogus => Lookup::bogus("the denial of existence does not validate"),
            other => negative(response.response_code, proof_status(other)),
        },
        NetError::Dns(DnsError::DnssecBogus) => {
            Lookup::bogus("the answer does not validate from the trust anchor")
        }
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => Lookup::servfail(),
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => Lookup::Refused,
        NetError::Dns(DnsError::ResponseCode(code)) => Lookup::Error {
            error: format!("the DNS server answered {code}"),
        },
        NetError::Timeout => Lookup::Timeout,
        NetError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => Lookup::Timeout,
        other => Lookup::Error {
            error: format!("DNS lookup failed: {other}"),
        },
    }
}

fn negative<T>(code: ResponseCode, dnssec: DnssecStatus) -> Lookup<T> {
    if code == ResponseCode::NXDomain {
        Lookup::NxDomain { dnssec }
    } else {
        Lookup::NoData { dnssec }
    }
}
#[cfg(test)]
mod tests {
    use super::super::fqdn;
    use super::*;
    use hickory_resolver::net::NoRecords;
    use hickory_resolver::proto::op::Query;
    use mxprobe_core::dns::Mx;

    #[test]
    fn names_are_written_without_the_trailing_dot() {
        let cases = [
            (".", "."),
            ("MX1.Example.COM.", "mx1.example.com"),
            ("a.b", "a.b"),
        ];
        for (input, expected) in cases {
            let name = Name::from_ascii(input).expect("name");
            assert_eq!(name_text(&name), expected);
        }
        assert_eq!(fqdn("example.com"), "example.com.");
        assert_eq!(fqdn("example.com."), "example.com.");
    }

    #[test]
    fn errors_are_classified_precisely() {
        let query = Query::query(Name::from_ascii("x.test.").expect("name"), RecordType::MX);
        let cases: Vec<(NetError, Lookup<Mx>)> = vec![
            (
                NoRecords::new(query.clone(), ResponseCode::NXDomain).into(),
                Lookup::NxDomain {
                    dnssec: DnssecStatus::Indeterminate,
                },
            ),
            (
                NoRecords::new(query, ResponseCode::NoError).into(),
                Lookup::NoData {
                    dnssec: DnssecStatus::Indeterminate,
                },
            ),
            (
                DnsError::ResponseCode(ResponseCode::ServFail).into(),
                Lookup::servfail(),
            ),
            (
                DnsError::ResponseCode(ResponseCode::Refused).into(),
                Lookup::Refused,
            ),
            (
                DnsError::ResponseCode(ResponseCode::NotImp).into(),
                Lookup::Error {
                    error: "the DNS server answered Not Implemented".into(),
                },
            ),
            (NetError::Timeout, Lookup::Timeout),
            (
                DnsError::DnssecBogus.into(),
                Lookup::bogus("the answer does not validate from the trust anchor"),
            ),
        ];
        for (error, expected) in cases {
            let shown = error.to_string();
            assert_eq!(classify_error::<Mx>(error), expected, "{shown}");
        }
    }
}
