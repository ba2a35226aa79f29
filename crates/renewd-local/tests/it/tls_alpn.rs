//! The tls-alpn-01 responder: only `acme-tls/1` handshakes for published names complete.

use std::net::SocketAddr;
use std::sync::Arc;

use renewd_acme::{ACME_TLS_ALPN_PROTOCOL, ChallengeSolver};
use renewd_local::TlsAlpn01Responder;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_util::sync::CancellationToken;
use x509_parser::prelude::*;

use crate::support::tls_alpn01_answer;

/// Accepts any certificate: the test reads what the responder presents.
#[derive(Debug)]
struct AnyCert;

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Handshakes with `sni` offering `alpn`; the leaf served, or the error.
async fn handshake(
    addr: SocketAddr,
    sni: &str,
    alpn: &[&[u8]],
) -> Result<(Vec<u8>, Option<Vec<u8>>), String> {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AnyCert))
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from(sni.to_string()).unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let conn = tls.get_ref().1;
    Ok((
        conn.peer_certificates().unwrap()[0].to_vec(),
        conn.alpn_protocol().map(<[u8]>::to_vec),
    ))
}

#[tokio::test]
async fn serves_the_challenge_certificate_only_to_acme_tls_handshakes() {
    let shutdown = CancellationToken::new();
    let responder = TlsAlpn01Responder::start(&["127.0.0.1:0".parse().unwrap()], &shutdown)
        .await
        .unwrap();
    let addr = responder.local_addrs()[0];
    let answer = tls_alpn01_answer("alpn.test", "tok-3.thumb");
    let renewd_acme::ChallengeProof::TlsAlpn01(expected) = &answer.proof else {
        unreachable!()
    };

    assert!(
        handshake(addr, "alpn.test", &[ACME_TLS_ALPN_PROTOCOL])
            .await
            .is_err(),
        "nothing published yet"
    );
    responder.present(&answer).await.unwrap();
    let (leaf, alpn) = handshake(addr, "alpn.test", &[ACME_TLS_ALPN_PROTOCOL])
        .await
        .unwrap();
    assert_eq!(leaf, expected.cert_der, "the RFC 8737 certificate");
    assert_eq!(alpn.as_deref(), Some(ACME_TLS_ALPN_PROTOCOL));
    let (_, x509) = X509Certificate::from_der(&leaf).unwrap();
    let oid = x509_parser::oid_registry::Oid::from(&[1, 3, 6, 1, 5, 5, 7, 1, 31]).unwrap();
    assert!(x509.get_extension_unique(&oid).unwrap().unwrap().critical);
    // SNI is case-insensitive.
    assert!(
        handshake(addr, "ALPN.test", &[b"h2", ACME_TLS_ALPN_PROTOCOL])
            .await
            .is_ok()
    );

    // Not a general HTTPS server.
    for (sni, alpn) in [
        ("alpn.test", &[b"h2".as_slice(), b"http/1.1"][..]),
        ("alpn.test", &[][..]),
        ("other.test", &[ACME_TLS_ALPN_PROTOCOL][..]),
    ] {
        assert!(
            handshake(addr, sni, alpn).await.is_err(),
            "{sni} with {alpn:?} is refused"
        );
    }

    responder.cleanup(&answer).await.unwrap();
    assert!(
        handshake(addr, "alpn.test", &[ACME_TLS_ALPN_PROTOCOL])
            .await
            .is_err()
    );

    let closed = responder.closed();
    shutdown.cancel();
    closed.await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
