//! The web app's errors, mapped once to HTTP: a redirect to sign in, or a status with a page (rendered in
//! the person's language by [`crate::pages::error_pages`]).

use axum::{
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use tonic::Code;

#[derive(Debug, Clone, thiserror::Error)]
pub enum WebError {
    #[error("not signed in")]
    SignIn { return_to: String },
    #[error("not found")]
    NotFound,
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// A form without this session's CSRF token.
    #[error("the form's security token is missing or wrong")]
    Csrf,
    #[error("{0}")]
    BadRequest(String),
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    #[error("the identity provider: {0}")]
    Provider(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// What the error page shows: its heading's message key and a detail (already safe to show).
#[derive(Debug, Clone)]
pub struct ErrorPage {
    pub key: &'static str,
    pub detail: String,
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::SignIn { .. } => StatusCode::SEE_OTHER,
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::Forbidden(_) | WebError::Csrf => StatusCode::FORBIDDEN,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Provider(_) => StatusCode::BAD_GATEWAY,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn page(&self) -> ErrorPage {
        let (key, detail) = match self {
            WebError::SignIn { .. } => ("error-sign-in", String::new()),
            WebError::NotFound => ("error-not-found", String::new()),
            WebError::Forbidden(d) => ("error-forbidden", d.clone()),
            WebError::Csrf => ("error-csrf", String::new()),
            WebError::BadRequest(d) => ("error-bad-request", d.clone()),
            WebError::Unavailable(d) => ("error-unavailable", d.clone()),
            WebError::Provider(d) => ("error-provider", d.clone()),
            // Our bug: the detail goes to the log, not to the page.
            WebError::Internal(_) => ("error-internal", String::new()),
        };
        ErrorPage { key, detail }
    }
}

impl From<sqlx::Error> for WebError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                WebError::Unavailable("the database".into())
            }
            other => WebError::Internal(other.to_string()),
        }
    }
}

impl From<tonic::Status> for WebError {
    fn from(status: tonic::Status) -> Self {
        let message = status.message().to_string();
        match status.code() {
            // Another agency's referral or case is not found for this person, as for the services.
            Code::NotFound => WebError::NotFound,
            Code::PermissionDenied => WebError::Forbidden(message),
            Code::Unauthenticated => WebError::SignIn {
                return_to: "/inbox".into(),
            },
            Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::AlreadyExists
            | Code::OutOfRange => WebError::BadRequest(message),
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::ResourceExhausted => WebError::Unavailable(message),
            _ => WebError::Internal(format!("{:?}: {message}", status.code())),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let WebError::SignIn { return_to } = &self {
            let target = format!("/sign-in?return_to={}", urlencode(return_to));
            return Redirect::to(&target).into_response();
        }
        if let WebError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let mut response = self.status().into_response();
        response.extensions_mut().insert(self.page());
        response
    }
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
