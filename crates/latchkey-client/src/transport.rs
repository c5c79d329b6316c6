//! Sending a request (again, when the retry policy says so) and opening its envelope.

use std::borrow::Cow;
use std::time::Duration;

use latchkey_api::{Envelope, ResultInfo};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

use crate::retry::{self, Replay};
use crate::{Client, Error};

/// What came back from one attempt.
struct Answer {
    status: StatusCode,
    retry_after: Option<Duration>,
    body: reqwest::Result<Vec<u8>>,
}

impl Client {
    /// A request to `{base}{path}`, with the token.
    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.request_to(method, format!("{}{path}", self.base_url))
    }

    /// A request to an absolute URL, with the token.
    pub(crate) fn request_to(&self, method: Method, url: String) -> RequestBuilder {
        self.http.request(method, url).bearer_auth(&self.token)
    }

    /// Sends `request`, retrying by its method, and returns the envelope's result.
    pub(crate) async fn send<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
    ) -> Result<(T, Option<ResultInfo>), Error> {
        let request = request.build()?;
        let replay = Replay::of(request.method());
        self.send_replaying(request, replay).await
    }

    /// Sends `request`, retrying as `replay` allows.
    pub(crate) async fn send_replaying<T: DeserializeOwned>(
        &self,
        request: reqwest::Request,
        replay: Replay,
    ) -> Result<(T, Option<ResultInfo>), Error> {
        let mut retry = 0;
        loop {
            // Only a streaming body cannot be cloned, and this crate sends none.
            let Some(attempt) = request.try_clone() else {
                return open(self.attempt(request).await?);
            };
            let outcome = self.attempt(attempt).await;
            let wait = match &outcome {
                Ok(answer) if replay.after_status(answer.status) => {
                    self.retry.delay(retry, answer.retry_after)
                }
                Ok(Answer { body: Err(_), .. }) | Err(_) if replay.after_transport_error() => {
                    self.retry.delay(retry, None)
                }
                _ => None,
            };
            match wait {
                Some(wait) => {
                    tokio::time::sleep(wait).await;
                    retry += 1;
                }
                None => return open(outcome?),
            }
        }
    }

    async fn attempt(&self, request: reqwest::Request) -> reqwest::Result<Answer> {
        let response = self.http.execute(request).await?;
        let status = response.status();
        let retry_after = retry::retry_after(response.headers());
        let body = response.bytes().await.map(Vec::from);
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }
}

/// The envelope's result, or the error the answer stands for.
fn open<T: DeserializeOwned>(answer: Answer) -> Result<(T, Option<ResultInfo>), Error> {
    let status = answer.status.as_u16();
    let bytes = answer.body?;
    let envelope: Envelope<T> = serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
        status,
        detail: e.to_string(),
    })?;
    if !envelope.success || !answer.status.is_success() {
        return Err(Error::Api {
            status,
            errors: envelope.errors,
            retry_after: answer.retry_after,
        });
    }
    let result = envelope.result.ok_or_else(|| Error::Decode {
        status,
        detail: "success without a result".into(),
    })?;
    Ok((result, envelope.result_info))
}

/// `text` as one path segment: everything but unreserved characters percent-encoded, so an
/// id cannot reach another path or add a query.
pub(crate) fn segment(text: &str) -> Cow<'_, str> {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    if text.bytes().all(unreserved) {
        return Cow::Borrowed(text);
    }
    let mut encoded = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if unreserved(b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    Cow::Owned(encoded)
}
