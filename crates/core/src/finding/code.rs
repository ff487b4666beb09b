//! The catalogue of finding codes: every code mxprobe emits is written here, once.
//!
//! A code is stable and dotted (`sts.policy.mx-not-covered`); `docs/findings.md` documents
//! each one (the tests below check both ways). Most codes are fixed; a few families carry a
//! variable part: the problem of a TXT record set, the part of an invalid policy (also its
//! RFC 8460 failure-reason-code), an SMTP reply code, a certificate problem.

use std::borrow::Cow;
use std::fmt;

use crate::tls::CertProblem;
use crate::tlsrpt::ResultType;

/// An enum of unit variants with their text, and the list of them all.
macro_rules! named {
    ($(#[$meta:meta])* pub enum $name:ident { $($variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// The text in the code (and, where one applies, the failure-reason-code).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }
        }
    };
}

/// The catalogue: fixed codes with their text, then the families with how their text is
/// made.
macro_rules! catalogue {
    (
        fixed { $($name:ident = $text:literal,)* }
        families { $($(#[doc = $doc:literal])* $family:ident($arg:ident: $ty:ty) => $make:expr,)* }
    ) => {
        /// A finding code (see the module documentation).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $($name,)*
            $($(#[doc = $doc])* $family($ty),)*
        }

        impl Code {
            /// Every code without a variable part.
            pub const FIXED: &'static [Self] = &[$(Self::$name),*];

            /// The names of the families, for the tests that cover each one.
            #[cfg(test)]
            const FAMILIES: &'static [&'static str] = &[$(stringify!($family)),*];

            /// The code as it is written in findings.
            pub fn text(self) -> Cow<'static, str> {
                match self {
                    $(Self::$name => Cow::Borrowed($text),)*
                    $(Self::$family($arg) => Cow::Owned($make),)*
                }
            }
        }
    };
}

named! {
    /// What is wrong with a `_mta-sts` or `_smtp._tls` TXT record set.
    pub enum TxtProblem {
        None = "none",
        Several = "several",
        Invalid = "invalid",
        Discarded = "discarded",
        SpaceBeforeDelimiter = "space-before-delimiter",
        IgnoredField = "ignored-field",
    }
}

named! {
    /// Why a policy body is invalid (RFC 8461 §3.2).
    pub enum InvalidPolicy {
        Empty = "empty",
        MissingVersion = "missing-version",
        MissingMode = "missing-mode",
        MissingMaxAge = "missing-max-age",
        NoMx = "no-mx",
        BadVersion = "bad-version",
        BadMode = "bad-mode",
        BadMaxAge = "bad-max-age",
        MaxAgeTooLarge = "max-age-too-large",
        BadMx = "bad-mx",
        NotKeyValue = "not-key-value",
        SpaceBeforeColon = "space-before-colon",
        LeadingWhitespace = "leading-whitespace",
        BadKey = "bad-key",
        EmptyValue = "empty-value",
        BadValue = "bad-value",
        BadLineEnd = "bad-line-end",
        BlankLine = "blank-line",
        NotUtf8 = "not-utf8",
    }
}

catalogue! {
    fixed {
        FindingsLeftOut = "findings.left-out",

        MxNull = "mx.null",
        MxNullPreference = "mx.null-preference",
        MxNullMixed = "mx.null-mixed",
        MxNullWithPolicy = "mx.null-with-policy",
        MxImplicit = "mx.implicit",
        MxNxdomain = "mx.nxdomain",
        MxInvalidName = "mx.invalid-name",
        MxUnresolvable = "mx.unresolvable",
        MxCname = "mx.cname",

        DnsMxFailed = "dns.mx.failed",
        DnsMxBogus = "dns.mx.bogus",
        DnsStsTxtFailed = "dns.sts-txt.failed",
        DnsStsTxtBogus = "dns.sts-txt.bogus",
        DnsTlsRptTxtFailed = "dns.tlsrpt-txt.failed",
        DnsTlsRptTxtBogus = "dns.tlsrpt-txt.bogus",
        DnsMxAddressPartial = "dns.mx-address.partial",
        DnsMxAddressFailed = "dns.mx-address.failed",
        DnsMxAddressBogus = "dns.mx-address.bogus",
        DnsResolverUnusable = "dns.resolver.unusable",

        StsNone = "sts.none",
        TlsRptNone = "tlsrpt.none",
        TlsRptTxtLegacyName = "tlsrpt.txt.legacy-name",
        TlsRptTxtWrongName = "tlsrpt.txt.wrong-name",
        TlsRptRuaUnusableScheme = "tlsrpt.rua.unusable-scheme",
        TlsRptRuaNoneUsable = "tlsrpt.rua.none-usable",
        TlsRptRuaUndeliverable = "tlsrpt.rua.undeliverable",
        TlsRptRuaNoTls = "tlsrpt.rua.no-tls",
        TlsRptRuaHttpsCert = "tlsrpt.rua.https-cert",
        TlsRptRuaHttpsRedirect = "tlsrpt.rua.https-redirect",
        TlsRptRuaHttpsStatus = "tlsrpt.rua.https-status",
        TlsRptRuaUnchecked = "tlsrpt.rua.unchecked",
        TlsRptRuaSizeLimit = "tlsrpt.rua.size-limit",

        StsPolicyDuplicateKey = "sts.policy.duplicate-key",
        StsPolicyUnknownKey = "sts.policy.unknown-key",
        StsPolicyDuplicateMx = "sts.policy.duplicate-mx",
        StsPolicyMaxAgeShort = "sts.policy.max-age-short",
        StsPolicyModeTesting = "sts.policy.mode-testing",
        StsPolicyModeNone = "sts.policy.mode-none",
        StsPolicyMxNotCovered = "sts.policy.mx-not-covered",
        StsPolicyUnusedPattern = "sts.policy.unused-pattern",
        StsEnforceNoDeliverableMx = "sts.enforce.no-deliverable-mx",

        StsFetchFailed = "sts.fetch.failed",
        StsFetchRedirect = "sts.fetch.redirect",
        StsFetchHttpStatus = "sts.fetch.http-status",
        StsFetchTooLarge = "sts.fetch.too-large",
        StsFetchWebpkiInvalid = "sts.fetch.webpki-invalid",
        StsFetchContentType = "sts.fetch.content-type",

        SmtpInconclusive = "smtp.inconclusive",
        SmtpNotTested = "smtp.not-tested",
        SmtpPortBlocked = "smtp.port-blocked",
        SmtpStarttlsUnavailable = "smtp.starttls.unavailable",
        SmtpTlsHandshakeFailed = "smtp.tls-handshake-failed",
        SmtpTlsRefusedAfterStarttls = "smtp.tls-refused-after-starttls",
        SmtpProtocolError = "smtp.smtp-protocol-error",
        SmtpCertExpiresSoon = "smtp.cert.expires-soon",
        SmtpCertWouldFailPolicy = "smtp.cert.would-fail-policy",

        DaneDnssecInvalid = "dane.dnssec-invalid",
        DaneTlsaInvalid = "dane.tlsa-invalid",
        DaneNoMatch = "dane.dane-no-match",

        GateStsIdUnchanged = "gate.sts.id-unchanged",
        GateMxRemovedFromPolicy = "gate.mx.removed-from-policy",
        GateMxNotCovered = "gate.mx.not-covered",
        GateEnforceBreaksMx = "gate.enforce.breaks-mx",
        GateEnforceWouldBreak = "gate.enforce.would-break",
        GateMaxAgeLongFirstEnforce = "gate.max-age.long-first-enforce",
        GateMaxAgeOldPolicyLingers = "gate.max-age.old-policy-lingers",
        GatePolicyHostUnavailable = "gate.policy-host.unavailable",
    }
    families {
        /// `sts.txt.<problem>`: the `_mta-sts` record set (RFC 8461 §3.1).
        StsTxt(p: TxtProblem) => format!("sts.txt.{}", p.as_str()),
        /// `tlsrpt.txt.<problem>`: the `_smtp._tls` record set (RFC 8460 §3).
        TlsRptTxt(p: TxtProblem) => format!("tlsrpt.txt.{}", p.as_str()),
        /// `sts.policy.<part>`: an invalid policy body.
        StsPolicyInvalid(p: InvalidPolicy) => format!("sts.policy.{}", p.as_str()),
        /// `smtp.rejected-<reply code>`: a permanent refusal where the probe needed 2xx.
        SmtpRejected(reply: u16) => format!("smtp.rejected-{reply}"),
        /// `smtp.cert.<reason>`: a certificate problem reported as `certificate-expired`,
        /// `certificate-host-mismatch` or `certificate-not-trusted` (see [`Code::certificate`]).
        SmtpCert(reason: &'static str) => format!("smtp.cert.{reason}"),
        /// `smtp.<reason>`: any other certificate problem (no certificate, an unparsable one).
        SmtpChain(reason: &'static str) => format!("smtp.{reason}"),
        /// `dane.dane-ta-<reason>`: a DANE-TA record matched, but the chain under it fails.
        DaneTa(reason: &'static str) => format!("dane.dane-ta-{reason}"),
    }
}

/// The prefix shared by every code about the `_smtp._tls` record and its destinations.
pub const TLSRPT_PREFIX: &str = "tlsrpt.";

impl Code {
    /// The code of a certificate problem of an SMTP session, by the result type senders
    /// report it under.
    pub fn certificate(problem: &CertProblem) -> Self {
        match problem.result_type() {
            ResultType::CertificateExpired
            | ResultType::CertificateHostMismatch
            | ResultType::CertificateNotTrusted => Self::SmtpCert(problem.reason_code()),
            _ => Self::SmtpChain(problem.reason_code()),
        }
    }
}

impl Code {
    /// Every code, one per value of each family's variable part where the values are known,
    /// one example where they are open (a reply code, the problem under a DANE-TA record).
    #[cfg(test)]
    pub(crate) fn examples() -> Vec<Self> {
        let mut codes = Self::FIXED.to_vec();
        for &p in TxtProblem::ALL {
            codes.extend([Self::StsTxt(p), Self::TlsRptTxt(p)]);
        }
        codes.extend(
            InvalidPolicy::ALL
                .iter()
                .map(|&p| Self::StsPolicyInvalid(p)),
        );
        codes.extend(tests::every_cert_problem().iter().map(Self::certificate));
        codes.push(Self::SmtpRejected(550));
        codes.push(Self::DaneTa("name-mismatch"));
        codes
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl From<Code> for Cow<'static, str> {
    fn from(code: Code) -> Self {
        code.text()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeSet;

    use time::OffsetDateTime;

    use super::*;
    use crate::tls::ChainPosition;

    /// One certificate problem of each kind.
    pub(super) fn every_cert_problem() -> Vec<CertProblem> {
        let t = OffsetDateTime::UNIX_EPOCH;
        let s = String::new;
        vec![
            CertProblem::EmptyChain,
            CertProblem::Malformed {
                index: None,
                detail: s(),
            },
            CertProblem::Expired {
                which: ChainPosition::Leaf,
                subject: s(),
                not_after: t,
            },
            CertProblem::Expired {
                which: ChainPosition::Intermediate { index: 1 },
                subject: s(),
                not_after: t,
            },
            CertProblem::NotYetValid {
                which: ChainPosition::Leaf,
                subject: s(),
                not_before: t,
            },
            CertProblem::NotYetValid {
                which: ChainPosition::Intermediate { index: 1 },
                subject: s(),
                not_before: t,
            },
            CertProblem::HostMismatch {
                expected: Vec::new(),
                presented: Vec::new(),
            },
            CertProblem::SelfSignedLeaf { subject: s() },
            CertProblem::UntrustedRoot {
                subject: s(),
                index: 1,
            },
            CertProblem::IssuerNotFound {
                issuer: s(),
                index: 0,
            },
            CertProblem::BadSignature {
                index: None,
                subject: None,
            },
            CertProblem::UnsupportedAlgorithm { detail: s() },
            CertProblem::WrongEku,
            CertProblem::CaAsLeaf,
            CertProblem::IssuerNotCa { index: None },
            CertProblem::PathLength,
            CertProblem::NameConstraints,
            CertProblem::Distrusted,
            CertProblem::Other { detail: s() },
        ]
    }

    /// The family, if any, of a code.
    fn family(code: Code) -> Option<&'static str> {
        Some(match code {
            Code::StsTxt(_) => "StsTxt",
            Code::TlsRptTxt(_) => "TlsRptTxt",
            Code::StsPolicyInvalid(_) => "StsPolicyInvalid",
            Code::SmtpRejected(_) => "SmtpRejected",
            Code::SmtpCert(_) => "SmtpCert",
            Code::SmtpChain(_) => "SmtpChain",
            Code::DaneTa(_) => "DaneTa",
            _ => return None,
        })
    }

    /// How `docs/findings.md` writes a code: open families by their pattern.
    fn documented_as(code: Code) -> String {
        match code {
            Code::SmtpRejected(_) => "smtp.rejected-<code>".to_owned(),
            Code::DaneTa(_) => "dane.dane-ta-<problem>".to_owned(),
            other => other.text().into_owned(),
        }
    }

    /// Every code in the first column of the tables of `docs/findings.md`.
    pub(crate) fn documented_codes() -> BTreeSet<String> {
        let doc = include_str!("../../../../docs/findings.md");
        let mut codes = BTreeSet::new();
        for line in doc.lines() {
            let Some(row) = line.strip_prefix('|') else {
                continue;
            };
            let first_cell = row.split('|').next().unwrap_or_default();
            codes.extend(first_cell.split('`').skip(1).step_by(2).map(str::to_owned));
        }
        codes
    }

    #[test]
    fn every_code_is_documented_and_every_documented_code_is_in_the_catalogue() {
        let documented = documented_codes();
        assert!(documented.contains("sts.policy.mx-not-covered"));
        assert!(documented.contains("tlsrpt.txt.none"));
        let catalogue: BTreeSet<String> = Code::examples().into_iter().map(documented_as).collect();
        let undocumented: Vec<&String> = catalogue.difference(&documented).collect();
        assert!(
            undocumented.is_empty(),
            "docs/findings.md lacks {undocumented:?}"
        );
        let unknown: Vec<&String> = documented.difference(&catalogue).collect();
        assert!(
            unknown.is_empty(),
            "docs/findings.md documents codes the catalogue does not have: {unknown:?}"
        );
    }

    #[test]
    fn every_family_is_covered_and_codes_are_distinct() {
        let codes = Code::examples();
        let covered: BTreeSet<&str> = codes.iter().filter_map(|&c| family(c)).collect();
        for name in Code::FAMILIES {
            assert!(covered.contains(name), "no example of {name}");
        }
        let texts: BTreeSet<String> = codes.iter().map(|c| c.text().into_owned()).collect();
        assert_eq!(texts.len(), codes.len(), "two codes share a text");
        for text in &texts {
            assert!(
                text.split('.').count() >= 2
                    && text.bytes().all(|b| b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || b"-.".contains(&b)),
                "{text} is not a dotted lower-case code"
            );
        }
    }

    #[test]
    fn texts_of_families() {
        assert_eq!(Code::StsTxt(TxtProblem::Several).text(), "sts.txt.several");
        assert_eq!(
            Code::TlsRptTxt(TxtProblem::SpaceBeforeDelimiter).text(),
            "tlsrpt.txt.space-before-delimiter"
        );
        assert_eq!(
            Code::StsPolicyInvalid(InvalidPolicy::NotUtf8).text(),
            "sts.policy.not-utf8"
        );
        assert_eq!(Code::SmtpRejected(554).to_string(), "smtp.rejected-554");
        assert_eq!(
            Code::certificate(&CertProblem::WrongEku).text(),
            "smtp.cert.no-server-auth-eku"
        );
        assert_eq!(
            Code::certificate(&CertProblem::EmptyChain).text(),
            "smtp.empty-chain"
        );
        assert_eq!(
            Code::DaneTa("leaf-expired").text(),
            "dane.dane-ta-leaf-expired"
        );
        assert!(matches!(Code::MxNull.text(), Cow::Borrowed("mx.null")));
        for code in Code::examples() {
            assert_eq!(
                format!("{code:?}").starts_with("TlsRpt"),
                code.text().starts_with(TLSRPT_PREFIX),
                "{code:?}"
            );
        }
    }
}
