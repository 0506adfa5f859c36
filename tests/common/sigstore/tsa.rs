//! An RFC 3161 timestamp authority, as sigstore's timestamp-authority serves one:
//! `POST /api/v1/timestamp` with `application/timestamp-query`.

use std::sync::Arc;

use super::fulcio::Ca;
use super::http::{Response, serve};

pub struct Tsa {
    pub url: String,
    pub ca: Arc<Ca>,
}

impl Tsa {
    pub fn start() -> Self {
        let ca = Arc::new(Ca::new("tsa.sigstore.test"));
        let url = serve(move |_request| Response::error(501, "not yet"));
        Tsa { url, ca }
    }

    pub fn timestamp_url(&self) -> String {
        format!("{}/api/v1/timestamp", self.url)
    }

    /// The chain for the trusted root: leaf first.
    pub fn chain_der(&self) -> Vec<Vec<u8>> {
        vec![self.ca.der.clone()]
    }
}
