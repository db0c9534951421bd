//! The issuer: account, order, challenges, finalization, storage and the renewal loop.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use instant_acme::{
    Account, AccountBuilder, AccountCredentials, AuthorizationStatus, Identifier, NewAccount,
    NewOrder, Order, OrderStatus, RetryPolicy,
};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::cert::{check_pair, renewal_due};
use crate::challenges::tls_alpn01_certificate;
use crate::fsutil::{PUBLIC_MODE, SECRET_MODE, ensure_private_dir, write_atomic};
use crate::{AcmeError, AcmeSettings, CertFiles, ChallengeKind, Challenges};

/// The renewal check runs at least this often, whatever the certificate's expiry.
const RECHECK_MAX: Duration = Duration::from_secs(12 * 3600);
/// First wait after a failed issuance; it doubles on each further failure.
const RETRY_MIN: Duration = Duration::from_secs(60);
/// Longest wait between failed issuances.
const RETRY_MAX: Duration = Duration::from_secs(3600);
/// How long to wait for the CA to validate the challenges, and then to sign.
const ORDER_POLICY: RetryPolicy = RetryPolicy::new()
    .initial_delay(Duration::from_millis(250))
    .backoff(1.5)
    .timeout(Duration::from_secs(180));
/// CN is limited to 64 characters (RFC 5280 ub-common-name); longer names go in SANs only.
const CN_MAX: usize = 64;
const ACCOUNT_DOES_NOT_EXIST: &str = "urn:ietf:params:acme:error:accountDoesNotExist";

/// The file `account.json`: the directory the account lives on, and its credentials.
#[derive(Serialize, Deserialize)]
struct StoredAccount {
    directory: String,
    credentials: AccountCredentials,
}

/// Obtains and renews one certificate for [`AcmeSettings::domains`].
///
/// Files under [`AcmeSettings::state_dir`]:
/// - `account.json` (0600): the ACME account, reused across runs;
/// - `<first-domain>/cert.pem` (0644) and `<first-domain>/key.pem` (0600): the current chain
///   and key, each replaced atomically, the key first.
pub struct Issuer {
    settings: AcmeSettings,
    challenges: Arc<Challenges>,
    files: CertFiles,
    account_path: PathBuf,
    /// The account once loaded; the lock also keeps two issuances from overlapping.
    account: tokio::sync::Mutex<Option<Account>>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("directory", &self.settings.directory)
            .field("domains", &self.settings.domains)
            .field("challenge", &self.settings.challenge)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// Checks the settings and prepares the issuer; no network or file access beyond reading
    /// [`AcmeSettings::directory_ca`]. Domain names are lowercased and a trailing dot dropped.
    ///
    /// Installs aws-lc-rs as rustls' process-wide crypto provider when none is installed yet.
    pub fn new(mut settings: AcmeSettings, challenges: Arc<Challenges>) -> Result<Self, AcmeError> {
        if !settings.directory.starts_with("https://") {
            return Err(AcmeError::InvalidSettings(format!(
                "directory {:?} is not an https:// URL",
                settings.directory
            )));
        }
        if settings.domains.is_empty() {
            return Err(AcmeError::InvalidSettings(
                "no domains to put on the certificate".into(),
            ));
        }
        let mut domains: Vec<String> = Vec::with_capacity(settings.domains.len());
        for raw in &settings.domains {
            let d = normalize_domain(raw)?;
            if !domains.contains(&d) {
                domains.push(d);
            }
        }
        settings.domains = domains;
        for c in &settings.contact {
            if !c.starts_with("mailto:") || c.len() <= "mailto:".len() {
                return Err(AcmeError::InvalidSettings(format!(
                    "contact {c:?} is not a mailto: URI"
                )));
            }
        }
        if settings.state_dir.as_os_str().is_empty() {
            return Err(AcmeError::InvalidSettings("state_dir is empty".into()));
        }
        if let Some(ca) = &settings.directory_ca {
            check_directory_ca(ca)?;
        }
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Loses only a race with another installer, whose provider then serves.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        }

        let dir = settings.state_dir.join(&settings.domains[0]);
        let files = CertFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        let account_path = settings.state_dir.join("account.json");
        Ok(Issuer {
            settings,
            challenges,
            files,
            account_path,
            account: tokio::sync::Mutex::new(None),
        })
    }

    /// The settings in use (domains normalized).
    pub fn settings(&self) -> &AcmeSettings {
        &self.settings
    }

    /// Where the chain and key are kept: `state_dir/<first-domain>/cert.pem` and `key.pem`.
    pub fn files(&self) -> CertFiles {
        self.files.clone()
    }

    /// Where the account credentials are kept: `state_dir/account.json`.
    pub fn account_file(&self) -> &Path {
        &self.account_path
    }

    /// Whether the stored certificate exists, parses with its key, names every domain, and is
    /// not due for renewal at `now`.
    pub fn current_is_fresh(&self, now: SystemTime) -> bool {
        match self.time_until_due(now) {
            Ok(_) => true,
            Err(reason) => {
                debug!(domains = ?self.settings.domains, reason, "stored certificate needs issuing");
                false
            }
        }
    }

    /// How long until the stored certificate is due for renewal, or why it is due now.
    fn time_until_due(&self, now: SystemTime) -> Result<Duration, String> {
        let read = |p: &Path| match std::fs::read(p) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(format!("{} does not exist", p.display()))
            }
            Err(e) => Err(format!("cannot read {}: {e}", p.display())),
        };
        let cert = read(&self.files.cert)?;
        let key = read(&self.files.key)?;
        let info = check_pair(&cert, &key, &self.settings.domains).map_err(|e| e.to_string())?;
        if renewal_due(info.not_after, now, self.settings.renew_before) {
            return Err("the certificate is due for renewal".into());
        }
        let due_at = info
            .not_after
            .checked_sub(self.settings.renew_before)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        Ok(due_at.duration_since(now).unwrap_or_default())
    }

    /// Obtains a certificate now: loads the account from `account.json` (or creates one and
    /// stores it), orders the domains, publishes the challenge answers in [`Challenges`] until
    /// the order is settled, finalizes with a new key and CSR, downloads the chain, checks it,
    /// and replaces the key and then the chain atomically. The previous files stay in place
    /// until then.
    pub async fn issue(&self) -> Result<CertFiles, AcmeError> {
        let mut slot = self.account.lock().await;
        ensure_private_dir(&self.settings.state_dir)?;
        if let Some(dir) = self.files.cert.parent() {
            ensure_private_dir(dir)?;
        }
        info!(
            domains = ?self.settings.domains,
            challenge = %self.settings.challenge,
            directory = %self.settings.directory,
            "requesting certificate"
        );

        let account = match slot.as_ref() {
            Some(a) => a.clone(),
            None => self.load_or_create_account(false).await?,
        };
        *slot = Some(account.clone());

        let identifiers: Vec<Identifier> = self
            .settings
            .domains
            .iter()
            .map(|d| Identifier::Dns(d.clone()))
            .collect();
        let new_order = NewOrder::new(&identifiers);
        let order = match account.new_order(&new_order).await {
            Err(instant_acme::Error::Api(p))
                if p.r#type.as_deref() == Some(ACCOUNT_DOES_NOT_EXIST) =>
            {
                warn!(
                    account = account.id(),
                    "the CA no longer knows the stored ACME account; creating a new one"
                );
                let account = self.load_or_create_account(true).await?;
                *slot = Some(account.clone());
                account
                    .new_order(&new_order)
                    .await
                    .map_err(AcmeError::acme("new order"))?
            }
            other => other.map_err(AcmeError::acme("new order"))?,
        };
        debug!(order = order.url(), "order created");

        let (chain_pem, key_pem) = self.complete_order(order).await?;
        let info = check_pair(
            chain_pem.as_bytes(),
            key_pem.as_bytes(),
            &self.settings.domains,
        )?;

        let files = self.files.clone();
        let written = files.clone();
        tokio::task::spawn_blocking(move || {
            write_atomic(&written.key, key_pem.as_bytes(), SECRET_MODE)?;
            write_atomic(&written.cert, chain_pem.as_bytes(), PUBLIC_MODE)
        })
        .await
        .map_err(|e| AcmeError::io("write", &files.cert, io::Error::other(e)))??;

        let valid_days = info
            .not_after
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .as_secs()
            / 86_400;
        info!(
            domains = ?self.settings.domains,
            cert = %files.cert.display(),
            valid_days,
            "certificate issued"
        );
        Ok(files)
    }

    /// Answers the order's challenges and finalizes it; returns the PEM chain and PEM key.
    async fn complete_order(&self, mut order: Order) -> Result<(String, String), AcmeError> {
        let kind = self.settings.challenge;
        let mut answers = PublishedAnswers {
            challenges: &self.challenges,
            http01: Vec::new(),
            tls_alpn01: Vec::new(),
        };

        let mut authorizations = order.authorizations();
        while let Some(result) = authorizations.next().await {
            let mut authz = result.map_err(AcmeError::acme("authorization fetch"))?;
            let domain = match authz.identifier().identifier {
                Identifier::Dns(d) => d.clone(),
                other => {
                    return Err(AcmeError::NotAuthorized(format!(
                        "the CA asked to authorize an unexpected identifier {other:?}"
                    )));
                }
            };
            match authz.status {
                AuthorizationStatus::Valid => {
                    debug!(domain, "authorization already valid");
                    continue;
                }
                AuthorizationStatus::Pending => {}
                other => {
                    return Err(AcmeError::NotAuthorized(format!(
                        "{domain}: authorization is {other:?}"
                    )));
                }
            }
            let mut challenge = authz.challenge(kind.acme_type()).ok_or_else(|| {
                AcmeError::ChallengeUnavailable {
                    domain: domain.clone(),
                    kind,
                }
            })?;
            let key_authorization = challenge.key_authorization();
            match kind {
                ChallengeKind::Http01 => {
                    answers.add_http01(
                        challenge.token.clone(),
                        key_authorization.as_str().to_owned(),
                    );
                }
                ChallengeKind::TlsAlpn01 => {
                    let cert =
                        tls_alpn01_certificate(&domain, key_authorization.digest().as_ref())?;
                    answers.add_tls_alpn01(domain.clone(), cert);
                }
            }
            debug!(domain, challenge = %kind, "challenge answer published");
            challenge.set_ready().await.map_err(|e| match e {
                instant_acme::Error::Api(p) => {
                    AcmeError::NotAuthorized(format!("{domain}: {kind} {p}"))
                }
                e => AcmeError::Acme {
                    step: "challenge ready",
                    source: e,
                },
            })?;
        }

        match order.poll_ready(&ORDER_POLICY).await {
            Ok(OrderStatus::Ready) => {}
            Ok(status) => {
                let why = failure_reasons(&mut order, kind, format!("order is {status:?}")).await;
                return Err(AcmeError::NotAuthorized(why));
            }
            Err(instant_acme::Error::Api(p)) => {
                let why = failure_reasons(&mut order, kind, p.to_string()).await;
                return Err(AcmeError::NotAuthorized(why));
            }
            Err(e) => {
                return Err(AcmeError::Acme {
                    step: "validation wait",
                    source: e,
                });
            }
        }
        drop(answers);

        let key = KeyPair::generate().map_err(|source| AcmeError::KeyGeneration {
            what: "certificate key",
            source,
        })?;
        let mut params =
            CertificateParams::new(self.settings.domains.clone()).map_err(|source| {
                AcmeError::KeyGeneration {
                    what: "CSR",
                    source,
                }
            })?;
        let mut dn = DistinguishedName::new();
        if self.settings.domains[0].len() <= CN_MAX {
            dn.push(DnType::CommonName, self.settings.domains[0].as_str());
        }
        params.distinguished_name = dn;
        let csr = params
            .serialize_request(&key)
            .map_err(|source| AcmeError::KeyGeneration {
                what: "CSR",
                source,
            })?;
        order
            .finalize_csr(csr.der())
            .await
            .map_err(AcmeError::acme("finalize"))?;
        let chain = order
            .poll_certificate(&ORDER_POLICY)
            .await
            .map_err(AcmeError::acme("certificate download"))?;
        Ok((chain, key.serialize_pem()))
    }

    fn account_builder(&self) -> Result<AccountBuilder, AcmeError> {
        match &self.settings.directory_ca {
            Some(ca) => Account::builder_with_root(ca),
            None => Account::builder(),
        }
        .map_err(AcmeError::acme("HTTP client setup"))
    }

    /// Loads the stored account for this directory, or creates one (always when `force_new`)
    /// and stores it.
    async fn load_or_create_account(&self, force_new: bool) -> Result<Account, AcmeError> {
        if !force_new && let Some(stored) = self.read_account()? {
            if stored.directory == self.settings.directory {
                let account = self
                    .account_builder()?
                    .from_credentials(stored.credentials)
                    .await
                    .map_err(AcmeError::acme("account load"))?;
                info!(account = account.id(), "reusing stored ACME account");
                return Ok(account);
            }
            warn!(
                file = %self.account_path.display(),
                stored = stored.directory,
                configured = self.settings.directory,
                "stored ACME account belongs to another directory; creating a new account"
            );
        }

        let contact: Vec<&str> = self.settings.contact.iter().map(String::as_str).collect();
        let (account, credentials) = self
            .account_builder()?
            .create(
                &NewAccount {
                    contact: &contact,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.settings.directory.clone(),
                None,
            )
            .await
            .map_err(AcmeError::acme("account creation"))?;
        let stored = StoredAccount {
            directory: self.settings.directory.clone(),
            credentials,
        };
        let json = serde_json::to_vec_pretty(&stored).map_err(|source| AcmeError::AccountFile {
            path: self.account_path.clone(),
            source,
        })?;
        write_atomic(&self.account_path, &json, SECRET_MODE)?;
        info!(account = account.id(), file = %self.account_path.display(), "created ACME account");
        Ok(account)
    }

    fn read_account(&self) -> Result<Option<StoredAccount>, AcmeError> {
        let bytes = match std::fs::read(&self.account_path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(AcmeError::io("read", &self.account_path, e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| AcmeError::AccountFile {
                path: self.account_path.clone(),
                source,
            })
    }

    /// Keeps the certificate current until `shutdown` resolves: when the stored certificate is
    /// missing or due, issues one (retrying failures after 1 min, doubling up to 1 h, each
    /// logged with its cause) and calls `on_issued`; then sleeps until renewal is due, waking
    /// at least every 12 h to check again.
    pub async fn run(
        self,
        on_issued: impl Fn(&CertFiles) + Send + Sync + 'static,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut retry = RETRY_MIN;
        loop {
            let wait = match self.time_until_due(SystemTime::now()) {
                Ok(until_due) => {
                    retry = RETRY_MIN;
                    until_due.min(RECHECK_MAX)
                }
                Err(reason) => {
                    info!(domains = ?self.settings.domains, reason, "certificate needs issuing");
                    let result = tokio::select! {
                        r = self.issue() => r,
                        () = &mut shutdown => break,
                    };
                    match result {
                        Ok(files) => {
                            retry = RETRY_MIN;
                            on_issued(&files);
                            match self.time_until_due(SystemTime::now()) {
                                Ok(until_due) => until_due.min(RECHECK_MAX),
                                Err(reason) => {
                                    warn!(
                                        domains = ?self.settings.domains,
                                        reason,
                                        "the new certificate is already due (renew_before is longer than its lifetime?); next issuance in 12 h"
                                    );
                                    RECHECK_MAX
                                }
                            }
                        }
                        Err(error) => {
                            let wait = retry;
                            retry = next_retry(retry);
                            warn!(
                                domains = ?self.settings.domains,
                                error = %error,
                                retry_in_secs = wait.as_secs(),
                                "certificate issuance failed"
                            );
                            wait
                        }
                    }
                }
            };
            debug!(wait_secs = wait.as_secs(), "next certificate check");
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = &mut shutdown => break,
            }
        }
        info!(domains = ?self.settings.domains, "certificate renewal stopped");
    }
}

/// The wait after the next failure, given the wait after this one.
fn next_retry(current: Duration) -> Duration {
    current.saturating_mul(2).clamp(RETRY_MIN, RETRY_MAX)
}

/// Why an order did not become ready: each failed authorization's challenge error.
async fn failure_reasons(order: &mut Order, kind: ChallengeKind, order_error: String) -> String {
    let mut reasons = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(result) = authorizations.next().await {
        let Ok(mut authz) = result else { continue };
        if let Err(e) = authz.refresh().await {
            debug!(error = %e, "cannot refresh a failed authorization");
        }
        if authz.status == AuthorizationStatus::Valid {
            continue;
        }
        let domain = authz.identifier().to_string();
        let detail = authz
            .challenges
            .iter()
            .filter(|c| c.r#type == kind.acme_type())
            .find_map(|c| c.error.as_ref().map(|p| p.to_string()))
            .unwrap_or_else(|| format!("authorization is {:?}", authz.status));
        reasons.push(format!("{domain}: {kind} {detail}"));
    }
    if reasons.is_empty() {
        order_error
    } else {
        reasons.join("; ")
    }
}

/// Challenge answers published for one order, withdrawn when it is dropped (whichever way the
/// order ends).
struct PublishedAnswers<'a> {
    challenges: &'a Challenges,
    http01: Vec<String>,
    tls_alpn01: Vec<(String, Arc<CertifiedKey>)>,
}

impl PublishedAnswers<'_> {
    fn add_http01(&mut self, token: String, key_authorization: String) {
        self.challenges
            .insert_http01(token.clone(), key_authorization);
        self.http01.push(token);
    }

    fn add_tls_alpn01(&mut self, domain: String, cert: Arc<CertifiedKey>) {
        self.challenges.insert_tls_alpn01(&domain, cert.clone());
        self.tls_alpn01.push((domain, cert));
    }
}

impl Drop for PublishedAnswers<'_> {
    fn drop(&mut self) {
        for token in &self.http01 {
            self.challenges.remove_http01(token);
        }
        for (domain, cert) in &self.tls_alpn01 {
            self.challenges.remove_tls_alpn01(domain, cert);
        }
    }
}

fn normalize_domain(raw: &str) -> Result<String, AcmeError> {
    let trimmed = raw.trim();
    let d = trimmed
        .strip_suffix('.')
        .unwrap_or(trimmed)
        .to_ascii_lowercase();
    if d.is_empty() {
        return Err(AcmeError::InvalidSettings("empty domain name".into()));
    }
    if d.contains('*') {
        return Err(AcmeError::InvalidSettings(format!(
            "wildcard {raw:?} cannot be validated with http-01 or tls-alpn-01"
        )));
    }
    if d.parse::<IpAddr>().is_ok() {
        return Err(AcmeError::InvalidSettings(format!(
            "IP address {raw:?} is not supported: use DNS names"
        )));
    }
    if rustls::pki_types::DnsName::try_from(d.as_str()).is_err() {
        return Err(AcmeError::InvalidSettings(format!(
            "{raw:?} is not a valid DNS name"
        )));
    }
    Ok(d)
}

fn check_directory_ca(path: &Path) -> Result<(), AcmeError> {
    let pem = std::fs::read(path).map_err(|e| AcmeError::io("read", path, e))?;
    match CertificateDer::pem_slice_iter(&pem).next() {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(AcmeError::InvalidSettings(format!(
            "directory_ca {} is not PEM: {e}",
            path.display()
        ))),
        None => Err(AcmeError::InvalidSettings(format!(
            "directory_ca {} holds no CERTIFICATE block",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::tests::self_signed;
    use std::time::UNIX_EPOCH;

    const DAY: Duration = Duration::from_secs(86_400);

    fn settings(dir: &Path, domains: &[&str]) -> AcmeSettings {
        AcmeSettings::new(
            "https://ca.test/dir",
            domains.iter().map(|d| d.to_string()).collect(),
            dir,
        )
    }

    fn new_issuer(s: AcmeSettings) -> Result<Issuer, AcmeError> {
        Issuer::new(s, Arc::new(Challenges::new()))
    }

    fn err_text(r: Result<Issuer, AcmeError>) -> String {
        r.err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn settings_are_checked() {
        let dir = Path::new("/nonexistent/state");
        assert_eq!(
            err_text(new_issuer(settings(dir, &[]))),
            "invalid ACME settings: no domains to put on the certificate"
        );
        assert_eq!(
            err_text(new_issuer(settings(dir, &["*.example.test"]))),
            "invalid ACME settings: wildcard \"*.example.test\" cannot be validated with http-01 or tls-alpn-01"
        );
        assert_eq!(
            err_text(new_issuer(settings(dir, &["192.0.2.1"]))),
            "invalid ACME settings: IP address \"192.0.2.1\" is not supported: use DNS names"
        );
        assert_eq!(
            err_text(new_issuer(settings(dir, &["a..test"]))),
            "invalid ACME settings: \"a..test\" is not a valid DNS name"
        );
        assert_eq!(
            err_text(new_issuer(settings(dir, &["../etc"]))),
            "invalid ACME settings: \"../etc\" is not a valid DNS name"
        );
        let mut s = settings(dir, &["a.test"]);
        s.directory = "http://ca.test/dir".into();
        assert_eq!(
            err_text(new_issuer(s)),
            "invalid ACME settings: directory \"http://ca.test/dir\" is not an https:// URL"
        );
        let mut s = settings(dir, &["a.test"]);
        s.contact = vec!["admin@example.test".into()];
        assert_eq!(
            err_text(new_issuer(s)),
            "invalid ACME settings: contact \"admin@example.test\" is not a mailto: URI"
        );
        let mut s = settings(dir, &["a.test"]);
        s.directory_ca = Some(dir.join("ca.pem"));
        assert!(err_text(new_issuer(s)).starts_with("cannot read /nonexistent/state/ca.pem: "));
    }

    #[test]
    fn domains_are_normalized_and_name_the_folder() -> Result<(), AcmeError> {
        let issuer = new_issuer(settings(
            Path::new("/srv/acme"),
            &["App.Example.test.", "www.example.test", "app.example.test"],
        ))?;
        assert_eq!(
            issuer.settings().domains,
            vec!["app.example.test", "www.example.test"]
        );
        assert_eq!(
            issuer.files(),
            CertFiles {
                cert: PathBuf::from("/srv/acme/app.example.test/cert.pem"),
                key: PathBuf::from("/srv/acme/app.example.test/key.pem"),
            }
        );
        assert_eq!(issuer.account_file(), Path::new("/srv/acme/account.json"));
        Ok(())
    }

    #[test]
    fn freshness_of_stored_certificate() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let issuer = new_issuer(settings(dir.path(), &["a.test", "b.test"]))?;
        let now = UNIX_EPOCH
            + Duration::from_secs(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs());
        assert!(!issuer.current_is_fresh(now), "nothing stored yet");

        let files = issuer.files();
        std::fs::create_dir_all(files.cert.parent().ok_or("no parent")?)?;
        let (cert, key) = self_signed(&["a.test", "b.test"], now - DAY, now + 90 * DAY);
        write_atomic(&files.cert, cert.as_bytes(), PUBLIC_MODE)?;
        assert!(!issuer.current_is_fresh(now), "key missing");
        write_atomic(&files.key, key.as_bytes(), SECRET_MODE)?;
        assert!(issuer.current_is_fresh(now));
        // 90 days left, renewal 30 days before: due in 60 days.
        assert_eq!(issuer.time_until_due(now), Ok(60 * DAY));
        assert!(issuer.current_is_fresh(now + 60 * DAY - Duration::from_secs(1)));
        assert!(!issuer.current_is_fresh(now + 60 * DAY + Duration::from_secs(1)));
        assert!(!issuer.current_is_fresh(now + 100 * DAY), "expired");

        // renew_before longer than the lifetime: never fresh.
        let mut s = settings(dir.path(), &["a.test", "b.test"]);
        s.renew_before = 365 * DAY;
        assert!(!new_issuer(s)?.current_is_fresh(now));

        // A name added to the settings that the certificate lacks: not fresh.
        assert!(!new_issuer(settings(dir.path(), &["a.test", "c.test"]))?.current_is_fresh(now));

        // A key that is not the certificate's: not fresh.
        let (_, other_key) = self_signed(&["a.test"], now - DAY, now + DAY);
        write_atomic(&files.key, other_key.as_bytes(), SECRET_MODE)?;
        assert!(!issuer.current_is_fresh(now));
        Ok(())
    }

    #[test]
    fn retry_backoff_doubles_to_the_cap() {
        let mut w = RETRY_MIN;
        let mut seen = vec![w.as_secs()];
        for _ in 0..8 {
            w = next_retry(w);
            seen.push(w.as_secs());
        }
        assert_eq!(seen, vec![60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
    }

    #[tokio::test]
    async fn run_stops_on_shutdown_while_retrying() {
        // The directory cannot be reached: issuance fails, the loop waits to retry, and the
        // shutdown future ends it.
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        let mut s = settings(dir.path(), &["a.test"]);
        s.directory = "https://127.0.0.1:1/dir".into();
        let issuer = match new_issuer(s) {
            Ok(i) => i,
            Err(e) => panic!("issuer: {e}"),
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(issuer.run(|_| panic!("nothing can be issued"), async move {
            let _ = rx.await;
        }));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = tx.send(());
        let finished = tokio::time::timeout(Duration::from_secs(60), task).await;
        assert!(
            matches!(finished, Ok(Ok(()))),
            "run did not stop: {finished:?}"
        );
    }
}
