//! Certificate download (§7.4.2) with alternate chains, the choice of a preferred chain,
//! and revocation (§7.6).

use renewd_core::Step;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::json;
use x509_parser::prelude::*;

use crate::account::Account;
use crate::client::{AcmeClient, Post, Reply};
use crate::error::Error;
use crate::headers;
use crate::jws::{KeyRef, b64};
use crate::keys::CertificateKey;

const PEM_CHAIN: &str = "application/pem-certificate-chain";

/// One certificate chain as downloaded: leaf first, PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateChain {
    /// Where it was downloaded from.
    pub url: String,
    /// The chain, PEM, leaf first.
    pub pem: String,
}

impl CertificateChain {
    /// The certificates, DER, leaf first.
    pub fn certificates_der(&self) -> Vec<Vec<u8>> {
        CertificateDer::pem_slice_iter(self.pem.as_bytes())
            .filter_map(Result::ok)
            .map(|c| c.to_vec())
            .collect()
    }

    /// The common name of the issuer of the top-most certificate (the root the chain leads
    /// to), as certbot and lego match a preferred chain.
    pub fn top_issuer_common_name(&self) -> Option<String> {
        let top = self.certificates_der().pop()?;
        let (_, cert) = X509Certificate::from_der(&top).ok()?;
        cert.issuer()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string)
    }
}

/// The default chain and the alternates the CA offered (`Link: rel="alternate"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadedChains {
    /// The chain at the order's certificate URL.
    pub default: CertificateChain,
    /// The alternates, in the CA's order.
    pub alternates: Vec<CertificateChain>,
}

impl DownloadedChains {
    /// Splits into (chosen, others): the first chain whose top-most certificate's issuer CN
    /// equals `preferred_issuer`, else the default.
    pub fn choose(
        self,
        preferred_issuer: Option<&str>,
    ) -> (CertificateChain, Vec<CertificateChain>) {
        let mut all = vec![self.default];
        all.extend(self.alternates);
        let index = preferred_issuer
            .and_then(|want| {
                all.iter()
                    .position(|c| c.top_issuer_common_name().as_deref() == Some(want))
            })
            .unwrap_or(0);
        let chosen = all.remove(index);
        (chosen, all)
    }
}

/// The alternate chains a download answer announces (`Link: <…>;rel="alternate"`).
pub(crate) fn alternate_links(reply: &Reply, url: &str) -> Vec<String> {
    headers::parse_links(&reply.headers, "alternate", url)
}

fn parse_chain(reply: &Reply) -> Result<CertificateChain, Error> {
    let pem = String::from_utf8(reply.body.to_vec())
        .map_err(|_| reply.invalid("the certificate chain is not text"))?;
    let chain = CertificateChain {
        url: reply.url.clone(),
        pem,
    };
    let ders = chain.certificates_der();
    if ders.is_empty() {
        return Err(reply.invalid("no certificate in the chain"));
    }
    for der in &ders {
        X509Certificate::from_der(der)
            .map_err(|e| reply.invalid(format!("a certificate does not parse: {e}")))?;
    }
    Ok(chain)
}

impl Account {
    /// Downloads the certificate chain at `url` and every alternate chain it links to that
    /// can be fetched (a failed alternate is logged and left out).
    pub async fn download(&self, url: &str) -> Result<DownloadedChains, Error> {
        self.download_in(url, None).await
    }

    pub(crate) async fn download_in(
        &self,
        url: &str,
        order_url: Option<&str>,
    ) -> Result<DownloadedChains, Error> {
        let (default, reply) = self.download_one(url, order_url).await?;
        let mut alternates = Vec::new();
        for alt in alternate_links(&reply, url) {
            // The certificate is in hand: an alternate chain that cannot be fetched is
            // left out (its request is in the ledger), never a reason to fail.
            match self.download_one(&alt, order_url).await {
                Ok((chain, _)) => alternates.push(chain),
                Err(e) => tracing::warn!(url = %alt, error = %e,
                    "an alternate chain could not be downloaded; going on without it"),
            }
        }
        Ok(DownloadedChains {
            default,
            alternates,
        })
    }

    pub(crate) async fn download_one(
        &self,
        url: &str,
        order_url: Option<&str>,
    ) -> Result<(CertificateChain, Reply), Error> {
        let mut post = self.post_args(Step::Download, url, None, order_url);
        post.accept = Some(PEM_CHAIN);
        self.client().post(post, parse_chain).await
    }

    /// Revokes a certificate (DER) with the account key (§7.6). `reason` is an RFC 5280
    /// CRLReason code.
    pub async fn revoke(&self, certificate_der: &[u8], reason: Option<u8>) -> Result<(), Error> {
        let url = self.client().directory().await?.revoke_cert.clone();
        let payload = revoke_payload(certificate_der, reason);
        self.client()
            .post(
                self.post_args(Step::Revoke, &url, Some(payload.as_bytes()), None),
                |_| Ok(()),
            )
            .await?;
        Ok(())
    }
}

fn revoke_payload(certificate_der: &[u8], reason: Option<u8>) -> String {
    let mut payload = json!({ "certificate": b64(certificate_der) });
    if let Some(reason) = reason {
        payload["reason"] = json!(reason);
    }
    payload.to_string()
}

impl AcmeClient {
    /// Revokes a certificate by signing with its own key (`jwk` header, §7.6): no account
    /// needed.
    pub async fn revoke_with_certificate_key(
        &self,
        key: &CertificateKey,
        certificate_der: &[u8],
        reason: Option<u8>,
    ) -> Result<(), Error> {
        let url = self.directory().await?.revoke_cert.clone();
        let signer = key.jws_signer()?;
        let payload = revoke_payload(certificate_der, reason);
        self.post(
            Post {
                step: Step::Revoke,
                url: &url,
                key: &signer,
                key_ref: KeyRef::Jwk,
                payload: Some(payload.as_bytes()),
                accept: None,
                order_url: None,
            },
            |_| Ok(()),
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

    /// A chain leaf ← intermediate, where the intermediate is issued by `root_cn`.
    fn chain(root_cn: &str) -> String {
        let root_key = KeyPair::generate().unwrap();
        let mut root = CertificateParams::default();
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root.distinguished_name.push(DnType::CommonName, root_cn);
        let root = Issuer::new(root, root_key);
        let int_key = KeyPair::generate().unwrap();
        let mut int = CertificateParams::default();
        int.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        int.distinguished_name
            .push(DnType::CommonName, "Intermediate");
        let int_cert = int.signed_by(&int_key, &root).unwrap();
        let int = Issuer::new(int, int_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["a.test".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &int)
            .unwrap();
        format!("{}{}", leaf.pem(), int_cert.pem())
    }

    #[test]
    fn preferred_chain_by_top_issuer_cn() {
        let chains = DownloadedChains {
            default: CertificateChain {
                url: "u0".into(),
                pem: chain("Root A"),
            },
            alternates: vec![
                CertificateChain {
                    url: "u1".into(),
                    pem: chain("Root B"),
                },
                CertificateChain {
                    url: "u2".into(),
                    pem: chain("Root C"),
                },
            ],
        };
        assert_eq!(
            chains.default.top_issuer_common_name().as_deref(),
            Some("Root A")
        );
        let (chosen, others) = chains.clone().choose(Some("Root C"));
        assert_eq!(chosen.url, "u2");
        assert_eq!(others.len(), 2);
        let (chosen, _) = chains.clone().choose(Some("Intermediate"));
        assert_eq!(chosen.url, "u0", "only the top-most issuer counts");
        let (chosen, _) = chains.choose(None);
        assert_eq!(chosen.url, "u0");
    }
}
