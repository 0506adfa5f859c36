//! The auth layer: one login before any transfer, so refused credentials fail at once and a
//! flaky registry does not pass for a refusing one. `GET /v2/` is asked once, under retries,
//! with the basic credentials (if any): a 200 means they are accepted and every request carries
//! them; a `WWW-Authenticate: Bearer` challenge names a token service (`token.rs`), whose token
//! (or the access token a docker identity token is exchanged for, `identity.rs`) every request
//! then carries. A 401 later asks the token service again ([`Remote::authenticate_again`]).

use super::token::TokenService;
use super::wire::{Attempt, error_text, send_under};
use super::{Credential, Failure, Remote};
use crate::error::{Error, Result};
use crate::secret::Secret;

/// The connections a push opens at login: its widest waves are the tags and the referrers
/// fallback index (six, with five tags), and the blobs beside the referrers question.
const WARM_CONNECTIONS: usize = 6;

/// What `GET /v2/` said.
#[derive(Debug, Clone)]
enum Challenge {
    /// 200, or a challenge other than bearer without credentials: requests go as they are.
    Accepted {
        /// The `WWW-Authenticate` value, if any, for naming what the registry asks for.
        asked: String,
    },
    /// 401 with `WWW-Authenticate: Bearer`: a token service decides.
    Bearer(TokenService),
}

/// What a login is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Pulling only.
    Read,
    /// Pushing, which also reads (blob checks, the referrers fallback tag).
    Write,
}

/// What the auth layer knows: set by [`Remote::login`], a token renewed after a 401.
#[derive(Debug, Default)]
pub(super) struct AuthState {
    /// What the login was for; `None` before it.
    access: Option<Access>,
    /// The registry accepted the credentials: a 401 after that is a lost token, worth another
    /// attempt, not a refusal.
    accepted: bool,
    /// The token service, when the registry asks for bearer tokens and its tokens can be asked
    /// for again (not for an identity token, which is exchanged once).
    service: Option<TokenService>,
    /// The bearer token every request to the registry carries.
    token: Option<Secret>,
    /// A token realm worth a warning has been named.
    pub(super) realm_named: bool,
    /// The session sent no probe ([`Remote::login_lazily`]): a 401 to a request sent without
    /// a token names the token service then.
    pub(super) deferred: bool,
}

/// The credentials a request to the registry carries.
pub(super) enum Presented {
    Bearer(Secret),
    Basic(String, Secret),
    None,
}

impl Remote {
    /// Authenticates for `access`, so bad credentials fail before any transfer, and leaves the
    /// token (if the registry uses them) for every later request. An identity token is
    /// exchanged for an access token at the realm the challenge names.
    pub async fn login(&self, access: Access) -> Result<()> {
        // Set first, so a refused login names push access.
        self.auth().access = Some(access);
        let probe = self.retrying("the registry's API check (GET /v2/)", |attempt| {
            self.probe(attempt)
        });
        let (challenge, ()) = match access {
            Access::Write => tokio::join!(probe, self.warm_up(WARM_CONNECTIONS - 1)),
            Access::Read => (probe.await, ()),
        };
        let challenge = challenge?;
        let (service, token) = match (challenge, &self.resolved.credential) {
            (Challenge::Bearer(service), Credential::IdentityToken(refresh)) => {
                let token = self
                    .retrying("the identity token exchange", |attempt| {
                        self.exchange_identity_token(attempt, &service, refresh)
                    })
                    .await?;
                (None, Some(token))
            }
            (Challenge::Accepted { asked }, Credential::IdentityToken(_)) => {
                return Err(Error::Credentials {
                    source_name: format!("the identity token from {}", self.resolved.source),
                    reason: format!(
                        "cannot be used: registry {} asks for no bearer token (WWW-Authenticate: `{asked}`)",
                        self.image.registry()
                    ),
                });
            }
            (Challenge::Bearer(service), _) => {
                let token = self
                    .retrying("authentication", |attempt| {
                        self.fetch_token(attempt, &service, access)
                    })
                    .await?;
                (Some(service), token)
            }
            (Challenge::Accepted { .. }, _) => (None, None),
        };
        let mut auth = self.auth();
        auth.accepted = !matches!(self.resolved.credential, Credential::Anonymous);
        auth.service = service;
        auth.token = token;
        Ok(())
    }

    /// [`Remote::login`], except that a session without credentials sends no probe: it has
    /// no credentials to be refused, so its first requests go out at once, and a 401 to one of
    /// them names the token service, if the registry has one ([`Remote::answer_challenge`]).
    /// A refusal then comes with the first request, before any upload.
    pub async fn login_lazily(&self, access: Access) -> Result<()> {
        if !matches!(self.resolved.credential, Credential::Anonymous) {
            return self.login(access).await;
        }
        {
            let mut auth = self.auth();
            auth.access = Some(access);
            auth.deferred = true;
        }
        // The push's first requests (its blobs and the referrers question) open connections
        // of their own; one more, beside them, is there when the tags and the fallback tag
        // are due. More would take the places in flight the first requests need.
        if access == Access::Write {
            tokio::spawn(self.warm_up(1));
        }
        Ok(())
    }

    /// A 401 whose `challenge` answered a request sent without a token, in a session that sent
    /// no probe: true when a token is now held (asked for here, or by another request first)
    /// and the request is worth sending again with it; false when the registry names no token
    /// service, and the 401 stands.
    pub(super) async fn answer_challenge(
        &self,
        challenge: &str,
    ) -> std::result::Result<bool, Failure> {
        let _one_at_a_time = self.renewal.lock().await;
        if self.auth().token.is_some() {
            return Ok(true);
        }
        let Some(service) = self.token_service(challenge)? else {
            return Ok(false);
        };
        let access = self.auth().access.unwrap_or(Access::Read);
        let token = self
            .retrying("authentication", |attempt| {
                self.fetch_token(attempt, &service, access)
            })
            .await
            .map_err(Failure::from)?;
        let mut auth = self.auth();
        auth.service = Some(service);
        auth.token = token;
        Ok(auth.token.is_some())
    }

    /// Whether the session sent no probe and holds no token yet: a 401 then names the token
    /// service.
    pub(super) fn awaits_challenge(&self) -> bool {
        let auth = self.auth();
        auth.deferred && auth.token.is_none()
    }

    /// The auth layer's state.
    pub(super) fn auth(&self) -> std::sync::MutexGuard<'_, AuthState> {
        self.auth.lock().expect("auth state")
    }

    /// Whether the session is for pushing: a refusal then names push access, else pull access.
    pub(super) fn pushing(&self) -> bool {
        self.auth().access == Some(Access::Write)
    }

    /// The credentials a request to the registry carries: the bearer token once one is issued,
    /// else the basic credentials.
    pub(super) fn credentials(&self) -> Presented {
        if let Some(token) = &self.auth().token {
            return Presented::Bearer(token.clone());
        }
        match &self.resolved.credential {
            Credential::Basic { username, password } => {
                Presented::Basic(username.clone(), password.clone())
            }
            _ => Presented::None,
        }
    }

    /// After a 401: whether another attempt may succeed, which it may only when the registry
    /// accepted the credentials at login (a lost session or an expired token; without
    /// credentials, or before login, a 401 is a refusal). The token service (the one login
    /// found, or one a bearer `challenge` names now) is asked for a new token first, which
    /// replaces the one held.
    pub(super) async fn authenticate_again(&self, challenge: Option<&str>) -> bool {
        let (access, known) = {
            let auth = self.auth();
            if !auth.accepted {
                return false;
            }
            (auth.access, auth.service.clone())
        };
        let Some(access) = access else {
            return false;
        };
        if matches!(self.resolved.credential, Credential::IdentityToken(_)) {
            return true;
        }
        let named = challenge.and_then(|c| self.token_service(c).ok().flatten());
        if let Some(service) = named.or(known)
            && let Ok(Some(token)) = self
                .fetch_token(
                    // Within the attempt the 401 refused: that attempt's retry tries again.
                    Attempt::unretried("a renewal inside a refused attempt, which is retried"),
                    &service,
                    access,
                )
                .await
        {
            let mut auth = self.auth();
            auth.service = Some(service);
            auth.token = Some(token);
        }
        true
    }

    /// Opens `count` connections for a push's widest waves, beside the probe's own (or the
    /// first requests'): over HTTP/1.1 a connection takes a request at a time, and one opened
    /// when a wave is due costs that wave a round trip (two over TLS). The only way to open one
    /// is a request, so each takes a `GET /v2/` without credentials, whose answer is read and
    /// set aside. Over HTTP/2 the requests share one connection, and these cost a few bytes.
    /// What it returns owns what it needs, so it may run on a task of its own.
    fn warm_up(&self, count: usize) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (http, backoff, url) = (self.http.clone(), self.backoff.clone(), self.api_root());
        async move {
            futures_util::future::join_all((0..count).map(|_| async {
                if let Ok(response) = send_under(
                    &backoff,
                    Attempt::unretried("a warm-up request, its answer set aside"),
                    http.get(url.clone()),
                )
                .await
                {
                    error_text(response).await;
                }
            }))
            .await;
        }
    }

    /// `GET /v2/`, with the basic credentials (if any).
    async fn probe(&self, attempt: Attempt) -> std::result::Result<Challenge, Failure> {
        let mut request = self.http.get(self.api_root());
        let basic = matches!(self.resolved.credential, Credential::Basic { .. });
        if let Credential::Basic { username, password } = &self.resolved.credential {
            request = request.basic_auth(username, Some(password.expose()));
        }
        let response = self.send_plain(attempt, request).await?;
        let status = response.status().as_u16();
        let asked = super::wire::challenge(&response)
            .unwrap_or_default()
            .to_owned();
        match status {
            200..=299 => Ok(Challenge::Accepted { asked }),
            401 => match self.token_service(&asked)? {
                Some(service) => Ok(Challenge::Bearer(service)),
                // Without credentials, a registry that checks them itself may still let a
                // pull through; a push it refuses, and that is known now, before any upload.
                None if !basic && !self.pushing() => Ok(Challenge::Accepted { asked }),
                None => Err(self.refusal(response, "the API check (GET /v2/)").await),
            },
            _ => Err(self.refusal(response, "the API check (GET /v2/)").await),
        }
    }
}
