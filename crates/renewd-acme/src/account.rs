//! Accounts (§7.3): create, find by key, external account binding, contact update, key
//! rollover and deactivation.

use std::fmt;
use std::sync::Arc;

use renewd_core::Step;
use serde_json::{Value, json};

use crate::client::{AcmeClient, Post};
use crate::error::Error;
use crate::jws::{self, AccountKey, ExternalAccountKey, JwsKey, KeyRef};
use crate::observer::RequestObserver;
use crate::types::AccountResource;

/// What newAccount sends.
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    /// `contact` URLs (`mailto:…`).
    pub contact: Vec<String>,
    /// `termsOfServiceAgreed`.
    pub terms_of_service_agreed: bool,
    /// The external account binding, where the CA requires one.
    pub eab: Option<ExternalAccountKey>,
}

/// An account at one CA: the client, the account key and the account URL (`kid`).
#[derive(Clone)]
pub struct Account {
    client: AcmeClient,
    key: Arc<AccountKey>,
    url: String,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("url", &self.url)
            .field("directory", &self.client.directory_url())
            .finish_non_exhaustive()
    }
}

impl AcmeClient {
    /// newAccount (§7.3): creates the account for `key`, or returns the existing one (the CA
    /// answers 200 for a key it knows).
    pub async fn new_account(&self, key: AccountKey, new: &NewAccount) -> Result<Account, Error> {
        let url = self.directory().await?.new_account.clone();
        let mut payload = json!({
            "termsOfServiceAgreed": new.terms_of_service_agreed,
            "contact": new.contact,
        });
        if let Some(eab) = &new.eab {
            payload["externalAccountBinding"] = eab.binding(&key.jwk(), &url)?;
        }
        self.account_request(key, &url, payload).await
    }

    /// newAccount with `onlyReturnExisting` (§7.3.1): the account of `key`, or a
    /// `accountDoesNotExist` refusal.
    pub async fn find_account(&self, key: AccountKey) -> Result<Account, Error> {
        let url = self.directory().await?.new_account.clone();
        self.account_request(key, &url, json!({"onlyReturnExisting": true}))
            .await
    }

    /// An account known from earlier (key and URL from the store); no request is made.
    pub fn account(&self, key: AccountKey, url: impl Into<String>) -> Account {
        Account {
            client: self.clone(),
            key: Arc::new(key),
            url: url.into(),
        }
    }

    async fn account_request(
        &self,
        key: AccountKey,
        url: &str,
        payload: Value,
    ) -> Result<Account, Error> {
        let payload = payload.to_string();
        let (account_url, _) = self
            .post(
                Post {
                    step: Step::Account,
                    url,
                    key: &key,
                    key_ref: KeyRef::Jwk,
                    payload: Some(payload.as_bytes()),
                    accept: None,
                    order_url: None,
                },
                |r| {
                    r.json::<AccountResource>()?;
                    r.location()
                },
            )
            .await?;
        Ok(self.account(key, account_url))
    }
}

impl Account {
    /// The account URL (`kid`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The account key.
    pub fn key(&self) -> &AccountKey {
        &self.key
    }

    /// The client.
    pub fn client(&self) -> &AcmeClient {
        &self.client
    }

    /// The same account, reporting requests to `observer` (see
    /// [`AcmeClient::with_observer`]).
    pub fn with_observer(&self, observer: Arc<dyn RequestObserver>) -> Account {
        Account {
            client: self.client.with_observer(observer),
            key: self.key.clone(),
            url: self.url.clone(),
        }
    }

    /// A signed POST by this account (`kid` header).
    pub(crate) fn post_args<'a>(
        &'a self,
        step: Step,
        url: &'a str,
        payload: Option<&'a [u8]>,
        order_url: Option<&'a str>,
    ) -> Post<'a> {
        Post {
            step,
            url,
            key: self.key.as_ref(),
            key_ref: KeyRef::Kid(&self.url),
            payload,
            accept: None,
            order_url,
        }
    }

    /// POST-as-GET the account object.
    pub async fn resource(&self) -> Result<AccountResource, Error> {
        let (res, _) = self
            .client
            .post(self.post_args(Step::Account, &self.url, None, None), |r| {
                r.json()
            })
            .await?;
        Ok(res)
    }

    /// Replaces the account's contact URLs (§7.3.2).
    pub async fn update_contact(&self, contact: &[String]) -> Result<AccountResource, Error> {
        let payload = json!({ "contact": contact }).to_string();
        let (res, _) = self
            .client
            .post(
                self.post_args(Step::Account, &self.url, Some(payload.as_bytes()), None),
                |r| r.json(),
            )
            .await?;
        Ok(res)
    }

    /// Deactivates the account (§7.3.6): the CA refuses every later request it signs.
    pub async fn deactivate(&self) -> Result<AccountResource, Error> {
        let payload = json!({ "status": "deactivated" }).to_string();
        let (res, _) = self
            .client
            .post(
                self.post_args(Step::Account, &self.url, Some(payload.as_bytes()), None),
                |r| r.json(),
            )
            .await?;
        Ok(res)
    }

    /// Key rollover (§7.3.5): the account's key becomes `new_key`. Returns the account with
    /// the new key; the old one no longer works.
    pub async fn key_rollover(&self, new_key: AccountKey) -> Result<Account, Error> {
        let url = self.client.directory().await?.key_change.clone();
        let inner_payload = json!({"account": self.url, "oldKey": self.key.jwk()}).to_string();
        let inner = jws::sign(
            &new_key,
            KeyRef::Jwk,
            None,
            &url,
            Some(inner_payload.as_bytes()),
        )?;
        let outer_payload = inner.to_string();
        self.client
            .post(
                self.post_args(Step::Account, &url, Some(outer_payload.as_bytes()), None),
                |_| Ok(()),
            )
            .await?;
        Ok(Account {
            client: self.client.clone(),
            key: Arc::new(new_key),
            url: self.url.clone(),
        })
    }
}
