//! PKIX and name judgement of a presented chain with rustls-webpki.

use std::net::IpAddr;

use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use time::OffsetDateTime;
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::verdict::{CertProblem, CertVerdict, ChainPosition};
use super::x509::{issuer_contents, san_names, self_issued, signed_by_anchor, subject_contents};
use crate::domain::DomainName;
use crate::tls::anchors::Anchors;

/// PKIX + name, for MTA-STS (RFC 8461 §4.1: the MX name) or the policy host.
pub fn judge_for_host(
    chain: &[CertificateDer<'_>],
    reference: &DomainName,
    at: OffsetDateTime,
    anchors: &Anchors,
) -> CertVerdict {
    judge(chain, Some(std::slice::from_ref(reference)), at, anchors)
}

/// PKIX + name, where any of `references` may match (DANE-TA, RFC 7672 §3.2.3). An empty
/// `references` makes every certificate a mismatch.
pub fn judge_for_names(
    chain: &[CertificateDer<'_>],
    references: &[DomainName],
    at: OffsetDateTime,
    anchors: &Anchors,
) -> CertVerdict {
    judge(chain, Some(references), at, anchors)
}

/// PKIX only: trust and dates, no name check.
pub fn judge_pkix(
    chain: &[CertificateDer<'_>],
    at: OffsetDateTime,
    anchors: &Anchors,
) -> CertVerdict {
    judge(chain, None, at, anchors)
}

fn unix(t: OffsetDateTime) -> UnixTime {
    // Certificates before 1970 do not exist in practice; clamp rather than fail.
    let secs = u64::try_from(t.unix_timestamp()).unwrap_or(0);
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs))
}

/// What the judgement needs of each presented certificate.
struct Info<'a> {
    /// The certificate as x509-parser reads it, when nothing follows it.
    cert: Option<X509Certificate<'a>>,
    subject: String,
    issuer: String,
    not_before: Option<OffsetDateTime>,
    not_after: Option<OffsetDateTime>,
    is_ca: bool,
}

impl<'a> Info<'a> {
    fn parse(der: &'a [u8]) -> Self {
        match X509Certificate::from_der(der) {
            Ok((rest, x)) => Self {
                subject: x.subject().to_string(),
                issuer: x.issuer().to_string(),
                not_before: Some(x.validity().not_before.to_datetime()),
                not_after: Some(x.validity().not_after.to_datetime()),
                is_ca: x.is_ca(),
                cert: rest.is_empty().then_some(x),
            },
            Err(_) => Self {
                cert: None,
                subject: "(unparsable certificate)".to_owned(),
                issuer: "(unknown)".to_owned(),
                not_before: None,
                not_after: None,
                is_ca: false,
            },
        }
    }

    /// The issuer Name's contents (see [`issuer_contents`]).
    fn issuer_name(&self) -> Option<&'a [u8]> {
        self.cert.as_ref().and_then(issuer_contents)
    }

    /// The subject Name's contents.
    fn subject_name(&self) -> Option<&'a [u8]> {
        self.cert.as_ref().and_then(subject_contents)
    }

    fn self_issued(&self) -> bool {
        self.cert.as_ref().is_some_and(self_issued)
    }
}

/// The path a validator would try: from the leaf, each next certificate is the first one
/// sent whose subject is the current issuer, until a self-issued certificate or a gap.
fn apparent_path(infos: &[Info<'_>]) -> Vec<usize> {
    let mut path = vec![0];
    let mut current = 0;
    loop {
        if infos[current].self_issued() {
            return path;
        }
        let Some(issuer) = infos[current].issuer_name() else {
            return path;
        };
        let next = (1..infos.len())
            .find(|&j| !path.contains(&j) && infos[j].subject_name() == Some(issuer));
        match next {
            Some(j) => {
                path.push(j);
                current = j;
            }
            None => return path,
        }
    }
}

fn time_problems(infos: &[Info<'_>], indices: &[usize], at: OffsetDateTime) -> Vec<CertProblem> {
    // webpki's rule (RFC 5280 §4.1.2.5, both ends inclusive), at whole seconds.
    let now = at.unix_timestamp();
    let mut out = Vec::new();
    for &i in indices {
        let info = &infos[i];
        if let Some(nb) = info.not_before
            && now < nb.unix_timestamp()
        {
            out.push(CertProblem::NotYetValid {
                which: ChainPosition::of(i),
                subject: info.subject.clone(),
                not_before: nb,
            });
        }
        if let Some(na) = info.not_after
            && now > na.unix_timestamp()
        {
            out.push(CertProblem::Expired {
                which: ChainPosition::of(i),
                subject: info.subject.clone(),
                not_after: na,
            });
        }
    }
    out
}

fn is_time_error(e: &webpki::Error) -> bool {
    matches!(
        e,
        webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. }
    )
}

/// Times at which to re-run path building so that dates do not hide trust problems: the
/// start of the intersection of the apparent path's windows, then the leaf's notBefore.
fn probe_times(infos: &[Info<'_>], path: &[usize]) -> Vec<UnixTime> {
    let mut out = Vec::new();
    let starts: Option<Vec<OffsetDateTime>> = path.iter().map(|&i| infos[i].not_before).collect();
    let ends: Option<Vec<OffsetDateTime>> = path.iter().map(|&i| infos[i].not_after).collect();
    if let (Some(starts), Some(ends)) = (starts, ends)
        && let (Some(start), Some(end)) = (starts.into_iter().max(), ends.into_iter().min())
        && start <= end
    {
        out.push(unix(start));
    }
    if let Some(nb) = infos[0].not_before {
        out.push(unix(nb));
    }
    out
}

fn judge(
    chain: &[CertificateDer<'_>],
    names: Option<&[DomainName]>,
    at: OffsetDateTime,
    anchors: &Anchors,
) -> CertVerdict {
    let Some(leaf_der) = chain.first() else {
        return CertVerdict {
            problems: vec![CertProblem::EmptyChain],
            verified_path: None,
        };
    };
    let leaf = match EndEntityCert::try_from(leaf_der) {
        Ok(leaf) => leaf,
        Err(e) => {
            return CertVerdict {
                problems: vec![CertProblem::Malformed {
                    index: Some(0),
                    detail: format!("{e:?}"),
                }],
                verified_path: None,
            };
        }
    };
    let infos: Vec<Info<'_>> = chain.iter().map(|c| Info::parse(c.as_ref())).collect();
    let intermediates = &chain[1..];
    let verify = |t: UnixTime| {
        leaf.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            anchors.as_slice(),
            intermediates,
            t,
            KeyUsage::server_auth(),
            None,
            None,
        )
        .map(|path| {
            let mut used = vec![0];
            for cert in path.intermediate_certificates() {
                let der = cert.der();
                if let Some(j) = (1..chain.len()).find(|&j| chain[j].as_ref() == der.as_ref()) {
                    used.push(j);
                }
            }
            used
        })
    };

    let mut problems = Vec::new();
    let now = verify(unix(at));
    let verified_path = now.as_ref().ok().cloned();
    if let Err(now_err) = now {
        let path = apparent_path(&infos);
        let mut settled = false;
        for t in probe_times(&infos, &path) {
            match verify(t) {
                Ok(used) => {
                    problems.extend(time_problems(&infos, &used, at));
                    settled = true;
                    break;
                }
                Err(e) if is_time_error(&e) => continue,
                Err(e) => {
                    problems.extend(time_problems(&infos, &path, at));
                    problems.extend(trust_problem(&e, &infos, &path, anchors));
                    settled = true;
                    break;
                }
            }
        }
        if !settled {
            // The windows of the path do not overlap (or dates are unreadable): the time
            // problems are all that can be said.
            problems.extend(time_problems(&infos, &path, at));
        }
        if problems.is_empty() {
            // Path building failed now but succeeded at the probe time on a path that is
            // in its window now: only a webpki limit (budget) can do this. Say what it said.
            problems.push(CertProblem::Other {
                detail: format!("{now_err:?}"),
            });
        }
    }
    if let Some(names) = names
        && let Some(p) = name_problem(&leaf, leaf_der.as_ref(), names)
    {
        problems.push(p);
    }
    CertVerdict {
        problems,
        verified_path,
    }
}

fn trust_problem(
    e: &webpki::Error,
    infos: &[Info<'_>],
    path: &[usize],
    anchors: &Anchors,
) -> Vec<CertProblem> {
    use webpki::Error as E;
    let mut out = Vec::new();
    // A certificate the validator could not read: say which, since it may be the gap.
    for (i, info) in infos.iter().enumerate().skip(1) {
        if info.cert.is_none() {
            out.push(CertProblem::Malformed {
                index: Some(i),
                detail: "not a DER X.509 certificate".to_owned(),
            });
        }
    }
    let p = match e {
        E::UnknownIssuer => unknown_issuer(infos, path, anchors),
        E::InvalidSignatureForPublicKey => bad_signature(infos, path, anchors),
        E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
        | E::SignatureAlgorithmMismatch => CertProblem::UnsupportedAlgorithm {
            detail: format!("{e:?}"),
        },
        E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension => CertProblem::WrongEku,
        E::CaUsedAsEndEntity => CertProblem::CaAsLeaf,
        E::EndEntityUsedAsCa => CertProblem::IssuerNotCa {
            index: path.iter().skip(1).copied().find(|&i| !infos[i].is_ca),
        },
        E::PathLenConstraintViolated => CertProblem::PathLength,
        E::NameConstraintViolation => CertProblem::NameConstraints,
        E::CertDistrusted => CertProblem::Distrusted,
        E::BadDer
        | E::BadDerTime
        | E::TrailingData(_)
        | E::MalformedExtensions
        | E::ExtensionValueInvalid
        | E::InvalidCertValidity
        | E::InvalidSerialNumber
        | E::UnsupportedCertVersion => CertProblem::Malformed {
            index: None,
            detail: format!("{e:?}"),
        },
        other => CertProblem::Other {
            detail: format!("{other:?}"),
        },
    };
    if !out.contains(&p) {
        out.push(p);
    }
    out
}

fn unknown_issuer(infos: &[Info<'_>], path: &[usize], anchors: &Anchors) -> CertProblem {
    let last = *path
        .last()
        .expect("the apparent path always starts with the leaf");
    let info = &infos[last];
    if info.self_issued() {
        if last == 0 {
            return CertProblem::SelfSignedLeaf {
                subject: info.subject.clone(),
            };
        }
        return CertProblem::UntrustedRoot {
            subject: info.subject.clone(),
            index: last,
        };
    }
    if let Some(issuer) = info.issuer_name()
        && anchors.has_subject(issuer)
    {
        // An anchor of that name exists but path building still failed on it.
        return bad_signature(infos, path, anchors);
    }
    CertProblem::IssuerNotFound {
        issuer: info.issuer.clone(),
        index: last,
    }
}

fn bad_signature(infos: &[Info<'_>], path: &[usize], anchors: &Anchors) -> CertProblem {
    let failing = |child: usize| CertProblem::BadSignature {
        index: Some(child),
        subject: Some(infos[child].subject.clone()),
    };
    for pair in path.windows(2) {
        let (child, parent) = (pair[0], pair[1]);
        if let (Some(c), Some(p)) = (&infos[child].cert, &infos[parent].cert)
            && c.verify_signature(Some(p.public_key())).is_err()
        {
            return failing(child);
        }
    }
    let last = *path
        .last()
        .expect("the apparent path always starts with the leaf");
    if let (Some(c), Some(issuer)) = (&infos[last].cert, infos[last].issuer_name()) {
        let named: Vec<&TrustAnchor<'_>> = anchors
            .as_slice()
            .iter()
            .filter(|a| a.subject.as_ref() == issuer)
            .collect();
        if !named.is_empty() && !named.iter().any(|a| signed_by_anchor(c, a)) {
            return failing(last);
        }
    }
    CertProblem::BadSignature {
        index: None,
        subject: None,
    }
}

fn name_problem(
    leaf: &EndEntityCert<'_>,
    leaf_der: &[u8],
    names: &[DomainName],
) -> Option<CertProblem> {
    for name in names {
        let Ok(server_name) = ServerName::try_from(name.as_str()) else {
            continue;
        };
        match leaf.verify_is_valid_for_subject_name(&server_name) {
            Ok(()) => return None,
            Err(webpki::Error::CertNotValidForName(_)) => {}
            Err(e) => {
                return Some(CertProblem::Malformed {
                    index: Some(0),
                    detail: format!("the subject alternative names cannot be read: {e:?}"),
                });
            }
        }
    }
    let (dns, ips) = san_names(leaf_der);
    let mut presented = dns;
    presented.extend(ips.iter().map(IpAddr::to_string));
    Some(CertProblem::HostMismatch {
        expected: names.to_vec(),
        presented,
    })
}

#[cfg(test)]
mod tests {
    use mxprobe_testpki::{CertAuthority, KeyKind, LeafSpec};
    use time::macros::datetime;

    use super::super::fixtures::window;
    use super::*;
    use crate::tlsrpt::ResultType;

    #[test]
    fn verified_path_leaves_out_what_the_path_does_not_use() {
        let root = CertAuthority::root("Root", window(), KeyKind::EcdsaP256).unwrap();
        let int = root
            .intermediate("Intermediate", window(), KeyKind::EcdsaP256)
            .unwrap();
        let stray = CertAuthority::root("Stray", window(), KeyKind::EcdsaP256).unwrap();
        let leaf = int
            .leaf(&LeafSpec::new(&["mx.example.com"], window()))
            .unwrap();
        let anchors = Anchors::from_pem(root.cert().pem().as_bytes()).unwrap();
        let t = datetime!(2025-01-01 0:00 UTC);
        // leaf, stray CA, intermediate, root: the path is the leaf and the intermediate.
        let mut chain = vec![leaf.der().clone(), stray.cert().der().clone()];
        chain.extend(int.full_chain_for(&leaf).into_iter().skip(1));
        assert_eq!(chain.len(), 4);
        assert_eq!(
            judge_pkix(&chain, t, &anchors).verified_path,
            Some(vec![0, 2])
        );
        assert_eq!(judge_pkix(&chain, t, &Anchors::empty()).verified_path, None);
        assert_eq!(
            judge_pkix(&chain, datetime!(2027-01-01 0:00 UTC), &anchors).verified_path,
            None
        );
        assert_eq!(judge_pkix(&[], t, &anchors).verified_path, None);
    }

    #[test]
    fn wrong_eku_is_named() {
        let root = CertAuthority::root("Root", window(), KeyKind::EcdsaP256).unwrap();
        let mut spec = LeafSpec::new(&["mx.example.com"], window());
        spec.server_auth = false;
        let leaf = root.leaf(&spec).unwrap();
        let anchors = Anchors::from_pem(root.cert().pem().as_bytes()).unwrap();
        let v = judge_pkix(
            &root.chain_for(&leaf),
            datetime!(2025-01-01 0:00 UTC),
            &anchors,
        );
        assert_eq!(v.problems, vec![CertProblem::WrongEku]);
    }

    #[test]
    fn bad_signature_names_the_certificate() {
        // A leaf issued by an impostor CA with the same name as the trusted root.
        let root = CertAuthority::root("Root", window(), KeyKind::EcdsaP256).unwrap();
        let impostor = CertAuthority::root("Root", window(), KeyKind::EcdsaP256).unwrap();
        let leaf = impostor
            .leaf(&LeafSpec::new(&["mx.example.com"], window()))
            .unwrap();
        let anchors = Anchors::from_pem(root.cert().pem().as_bytes()).unwrap();
        let v = judge_pkix(
            &[leaf.der().clone()],
            datetime!(2025-01-01 0:00 UTC),
            &anchors,
        );
        assert_eq!(
            v.problems,
            vec![CertProblem::BadSignature {
                index: Some(0),
                subject: Some("O=mxprobe lab, CN=mx.example.com".into()),
            }]
        );
    }

    #[test]
    fn empty_and_garbage_chains() {
        let anchors = Anchors::empty();
        let t = datetime!(2025-01-01 0:00 UTC);
        assert_eq!(
            judge_pkix(&[], t, &anchors).problems,
            vec![CertProblem::EmptyChain]
        );
        let v = judge_pkix(&[CertificateDer::from(vec![1u8, 2, 3])], t, &anchors);
        assert!(matches!(
            v.problems.as_slice(),
            [CertProblem::Malformed { index: Some(0), .. }]
        ));
        assert_eq!(v.result_types(), vec![ResultType::ValidationFailure]);
    }
}
