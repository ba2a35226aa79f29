//! The post-deploy check (`verify_served`): after the deploy hook reloaded the server,
//! connect to each configured address and see which certificate it really serves.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use renewd_core::DomainName;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::Error;

/// How patiently to check: each attempt (connect + handshake) within `timeout`; up to
/// `attempts` attempts per address while it does not serve the expected serial, pausing
/// `first_pause`, doubling each time (a reload may take a moment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServedCheck {
    /// The limit of one connect + handshake.
    pub timeout: Duration,
    /// Attempts per address (at least 1).
    pub attempts: u32,
    /// The pause after the first failed attempt.
    pub first_pause: Duration,
}

impl Default for ServedCheck {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            attempts: 4,
            first_pause: Duration::from_secs(1),
        }
    }
}

/// What one address serves.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Served {
    /// It serves the new certificate.
    Served {
        /// The address.
        addr: SocketAddr,
        /// The serial (lower-case hex, no leading zeros).
        serial: String,
    },
    /// It serves another certificate (the reload did not take, or another server answers).
    Mismatch {
        /// The address.
        addr: SocketAddr,
        /// The new certificate's serial.
        expected: String,
        /// The serial it serves.
        got: String,
    },
    /// No TLS handshake completed.
    Unreachable {
        /// The address.
        addr: SocketAddr,
        /// The last error.
        error: String,
    },
}

impl Served {
    /// Whether the address serves the new certificate.
    pub fn is_served(&self) -> bool {
        matches!(self, Served::Served { .. })
    }

    /// The address.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Served::Served { addr, .. }
            | Served::Mismatch { addr, .. }
            | Served::Unreachable { addr, .. } => *addr,
        }
    }
}

impl fmt::Display for Served {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Served::Served { addr, serial } => write!(f, "{addr} serves serial {serial}"),
            Served::Mismatch {
                addr,
                expected,
                got,
            } => write!(f, "{addr} serves serial {got}, not the new {expected}"),
            Served::Unreachable { addr, error } => write!(f, "{addr} unreachable: {error}"),
        }
    }
}

/// Connects to every address in `addrs` (concurrently) with SNI `name` (a wildcard's base
/// name) and compares the served leaf's serial with `expected_serial` (hex, any case,
/// leading zeros ignored). One report per address, in order. `Err` only if the TLS client
/// cannot be built.
///
/// Any certificate is accepted — it is only read — but the server must prove it holds the
/// certificate's key (the handshake signature is verified).
pub async fn verify_served(
    addrs: &[SocketAddr],
    name: &DomainName,
    expected_serial: &str,
    check: &ServedCheck,
) -> Result<Vec<Served>, Error> {
    let sni = ServerName::try_from(name.base().to_string()).map_err(|e| Error::TlsConfig {
        what: "verify_served",
        detail: format!("{name} cannot be sent as SNI: {e}"),
    })?;
    let connector = connector()?;
    let expected = normalize_serial(expected_serial);
    let check = *check;
    let checks = addrs.iter().map(|&addr| {
        let (connector, sni, expected) = (connector.clone(), sni.clone(), expected.clone());
        async move { check_address(&connector, addr, sni, &expected, &check).await }
    });
    let tasks: Vec<_> = checks.map(tokio::spawn).collect();
    let mut reports = Vec::with_capacity(tasks.len());
    for (task, &addr) in tasks.into_iter().zip(addrs) {
        reports.push(task.await.unwrap_or_else(|e| Served::Unreachable {
            addr,
            error: format!("the check failed: {e}"),
        }));
    }
    Ok(reports)
}

async fn check_address(
    connector: &TlsConnector,
    addr: SocketAddr,
    sni: ServerName<'static>,
    expected: &str,
    check: &ServedCheck,
) -> Served {
    let mut pause = check.first_pause;
    let mut attempt = 1;
    loop {
        let report =
            match tokio::time::timeout(check.timeout, served_serial(connector, addr, sni.clone()))
                .await
            {
                Ok(Ok(serial)) if serial == expected => return Served::Served { addr, serial },
                Ok(Ok(got)) => Served::Mismatch {
                    addr,
                    expected: expected.to_string(),
                    got,
                },
                Ok(Err(error)) => Served::Unreachable { addr, error },
                Err(_) => Served::Unreachable {
                    addr,
                    error: format!("no handshake within {:?}", check.timeout),
                },
            };
        if attempt >= check.attempts.max(1) {
            return report;
        }
        tracing::debug!(%report, attempt, "not serving the new certificate yet");
        tokio::time::sleep(pause).await;
        pause = pause.saturating_mul(2);
        attempt += 1;
    }
}

/// Connects, handshakes, and returns the leaf's serial.
async fn served_serial(
    connector: &TlsConnector,
    addr: SocketAddr,
    sni: ServerName<'static>,
) -> Result<String, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let tls = connector
        .connect(sni, tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))?;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("the server sent no certificate")?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| format!("the served certificate does not parse: {e}"))?;
    Ok(serial_hex(cert.tbs_certificate.raw_serial()))
}

fn connector() -> Result<TlsConnector, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::TlsConfig {
            what: "verify_served",
            detail: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ReadOnly(provider)))
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Lower-case hex of the serial's bytes, without leading zeros ("0" for zero).
fn serial_hex(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    normalize_serial(&hex)
}

fn normalize_serial(hex: &str) -> String {
    let lower = hex.trim().to_ascii_lowercase().replace(':', "");
    match lower.trim_start_matches('0') {
        "" => "0".to_string(),
        s => s.to_string(),
    }
}

/// Accepts any certificate chain (we only read it), but verifies the handshake signature
/// with the leaf's key.
#[derive(Debug)]
struct ReadOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for ReadOnly {
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
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_compare_as_numbers() {
        assert_eq!(serial_hex(&[0x00, 0x87, 0x65]), "8765");
        assert_eq!(serial_hex(&[0x00]), "0");
        assert_eq!(normalize_serial("00:AB:cd"), "abcd");
        assert_eq!(normalize_serial("0ABCD"), "abcd");
    }
}
