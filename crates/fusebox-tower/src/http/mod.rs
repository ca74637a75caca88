//! HTTP: response classification, idempotent retries, Retry-After, and axum responses.
