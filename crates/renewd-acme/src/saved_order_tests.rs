//! What the scripted test modules share to resume a saved order: the record of order
//! `https://ca/order/1` for `a.test` under a fresh key, and resuming it as account
//! `https://ca/acct/1` with no challenge expected. No network.
#![allow(clippy::unwrap_used)]

use chrono::Utc;
use renewd_core::{ChallengeType, KeyType};

use crate::{
    AccountKey, AcmeClient, BoxError, BoxFuture, CertificateKey, ChallengeAnswer, ChallengeSolver,
    Error, Identifier, Issued, MemoryPendingOrders, PendingOrder,
};

/// A solver for orders whose authorizations are all valid: asked to present, it fails.
pub(crate) struct NoChallenges;

impl ChallengeSolver for NoChallenges {
    fn present<'a>(&'a self, _: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async { Err("no challenge expected".into()) })
    }
    fn cleanup<'a>(&'a self, _: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async { Ok(()) })
    }
}

/// The record of order `https://ca/order/1` (finalize `https://ca/finalize/1` is the CA's
/// business) for `a.test`, with a fresh P-256 key and its CSR.
pub(crate) fn saved_order() -> PendingOrder {
    let key = CertificateKey::generate(KeyType::EcdsaP256).unwrap();
    let ids = vec![Identifier::dns("a.test")];
    PendingOrder {
        directory_url: "https://ca/dir".into(),
        account_url: "https://ca/acct/1".into(),
        order_url: "https://ca/order/1".into(),
        csr: crate::jws::b64(key.csr_der(&ids).unwrap()),
        identifiers: ids,
        key_type: key.key_type(),
        key_pem: key.to_pem(),
        challenge: ChallengeType::Http01,
        profile: None,
        preferred_chain: None,
        created: Utc::now(),
    }
}

/// Resumes `record` through `client` as its account (a new key: the scripts do not check
/// signatures), with [`NoChallenges`] and a sink nobody reads.
pub(crate) async fn resume(client: &AcmeClient, record: &PendingOrder) -> Result<Issued, Error> {
    let account = client.account(AccountKey::generate(), "https://ca/acct/1");
    account
        .resume(record, &NoChallenges, &MemoryPendingOrders::default())
        .await
}
