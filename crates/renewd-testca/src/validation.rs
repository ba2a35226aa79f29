//! Real challenge validation, always on loopback: http-01 (RFC 8555 §8.3), tls-alpn-01
//! (RFC 8737) against the ports the test gives, dns-01 through the test's callback.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use x509_parser::extensions::{GeneralName, ParsedExtension};

use crate::config::Validators;
use crate::response::Problem;
use crate::state::ChallengeKind;

/// How long one validation may take.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(10);

/// What to validate.
#[derive(Debug, Clone)]
pub(crate) struct ValidationTask {
    pub kind: ChallengeKind,
    pub domain: String,
    pub token: String,
    pub key_authorization: String,
    pub validators: Validators,
}

fn problem(kind: &str, detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, kind, detail)
}

/// Runs one validation; `Err` holds the problem to attach to the challenge.
pub(crate) async fn validate(task: &ValidationTask) -> Result<(), Problem> {
    let work = async {
        match task.kind {
            ChallengeKind::Http01 => http01(task).await,
            ChallengeKind::TlsAlpn01 => tls_alpn01(task).await,
            ChallengeKind::Dns01 => dns01(task).await,
        }
    };
    tokio::time::timeout(VALIDATION_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Err(problem("connection", "validation timed out")))
}

async fn http01(task: &ValidationTask) -> Result<(), Problem> {
    let port = task
        .validators
        .http01_port
        .ok_or_else(|| problem("connection", "no http-01 port configured"))?;
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| problem("connection", format!("http-01 connect: {e}")))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| problem("connection", format!("http-01 handshake: {e}")))?;
    tokio::spawn(async move {
        // The connection ends with the request; its error, if any, shows in the response.
        let _ = conn.await;
    });
    let request = http::Request::get(format!("/.well-known/acme-challenge/{}", task.token))
        .header(http::header::HOST, &task.domain)
        .header(http::header::USER_AGENT, "renewd-testca validator")
        .body(Empty::<Bytes>::new())
        .map_err(|e| problem("malformed", format!("http-01 request: {e}")))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| problem("connection", format!("http-01 request: {e}")))?;
    if response.status() != StatusCode::OK {
        return Err(problem(
            "unauthorized",
            format!("http-01: status {} for the token", response.status()),
        ));
    }
    let body = Limited::new(response.into_body(), 8192)
        .collect()
        .await
        .map_err(|e| problem("connection", format!("http-01 body: {e}")))?
        .to_bytes();
    let body = String::from_utf8_lossy(&body);
    if body.trim_end() != task.key_authorization {
        return Err(problem(
            "incorrectResponse",
            format!(
                "http-01: expected {:?}, got {body:?}",
                task.key_authorization
            ),
        ));
    }
    Ok(())
}

/// Accepts any certificate but still checks the handshake signature: the tls-alpn-01
/// certificate is self-signed by design, and what matters is its content. Its critical
/// acmeIdentifier extension makes webpki refuse to parse it, so the signature is checked
/// against the key x509-parser finds, which rustls supports for TLS 1.3 only — hence the
/// validator speaks TLS 1.3.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Unreachable: the validator's config offers TLS 1.3 only.
        Err(rustls::Error::General(
            "tls-alpn-01 validation speaks TLS 1.3 only".to_owned(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        let spki = SubjectPublicKeyInfoDer::from(parsed.public_key().raw);
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &spki,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The `id-pe-acmeIdentifier` extension OID, 1.3.6.1.5.5.7.1.31.
const ACME_IDENTIFIER: &str = "1.3.6.1.5.5.7.1.31";

async fn tls_alpn01(task: &ValidationTask) -> Result<(), Problem> {
    let port = task
        .validators
        .tls_alpn01_port
        .ok_or_else(|| problem("connection", "no tls-alpn-01 port configured"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| problem("serverInternal", format!("TLS setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"acme-tls/1".to_vec()];
    let server_name = ServerName::try_from(task.domain.clone())
        .map_err(|_| problem("malformed", "domain is not a valid SNI name"))?;
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| problem("connection", format!("tls-alpn-01 connect: {e}")))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name, stream)
        .await
        .map_err(|e| problem("tls", format!("tls-alpn-01 handshake: {e}")))?;
    let (_, conn) = tls.get_ref();
    if conn.alpn_protocol() != Some(b"acme-tls/1".as_slice()) {
        return Err(problem("tls", "tls-alpn-01: acme-tls/1 was not negotiated"));
    }
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| problem("tls", "tls-alpn-01: no certificate"))?;
    check_alpn_certificate(leaf, &task.domain, &task.key_authorization)
}

/// RFC 8737 §3: one dNSName SAN, the domain; a critical acmeIdentifier extension holding
/// the OCTET STRING SHA-256(keyAuthorization).
fn check_alpn_certificate(
    der: &[u8],
    domain: &str,
    key_authorization: &str,
) -> Result<(), Problem> {
    let bad = |detail: &str| problem("unauthorized", format!("tls-alpn-01: {detail}"));
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|_| bad("certificate does not parse"))?;
    let mut sans = Vec::new();
    let mut acme_id = None;
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
            sans.extend(san.general_names.iter().cloned());
        }
        if ext.oid.to_id_string() == ACME_IDENTIFIER {
            acme_id = Some((ext.critical, ext.value.to_vec()));
        }
    }
    match sans.as_slice() {
        [GeneralName::DNSName(n)] if n.eq_ignore_ascii_case(domain) => {}
        _ => return Err(bad("the certificate must name exactly the domain")),
    }
    let (critical, value) = acme_id.ok_or_else(|| bad("no acmeIdentifier extension"))?;
    if !critical {
        return Err(bad("acmeIdentifier extension is not critical"));
    }
    let mut expected = vec![0x04, 0x20];
    expected.extend_from_slice(&Sha256::digest(key_authorization.as_bytes()));
    if value != expected {
        return Err(bad("acmeIdentifier does not match the key authorization"));
    }
    Ok(())
}

async fn dns01(task: &ValidationTask) -> Result<(), Problem> {
    let callback = task
        .validators
        .dns01
        .as_ref()
        .ok_or_else(|| problem("dns", "no dns-01 validator configured"))?;
    let name = format!("_acme-challenge.{}", task.domain);
    let value = URL_SAFE_NO_PAD.encode(Sha256::digest(task.key_authorization.as_bytes()));
    if callback.check(name.clone(), value.clone()).await {
        Ok(())
    } else {
        Err(problem(
            "unauthorized",
            format!("dns-01: no TXT record {value:?} at {name}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, CustomExtension, KeyPair};

    use super::*;

    fn alpn_cert(domain: &str, key_authz: &str) -> Vec<u8> {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec![domain.to_owned()]).expect("params");
        params
            .custom_extensions
            .push(CustomExtension::new_acme_identifier(&Sha256::digest(
                key_authz.as_bytes(),
            )));
        params.self_signed(&key).expect("cert").der().to_vec()
    }

    #[test]
    fn the_rfc_8737_certificate_passes_and_others_fail() {
        let good = alpn_cert("a.example", "tok.thumb");
        assert!(check_alpn_certificate(&good, "a.example", "tok.thumb").is_ok());
        assert!(check_alpn_certificate(&good, "a.example", "tok.other").is_err());
        assert!(check_alpn_certificate(&good, "b.example", "tok.thumb").is_err());
    }
}
