//! Which HTTP requests may be sent twice.

use std::sync::Arc;

use http::header::HeaderName;
use http::{Method, Request};

use crate::retry::RetryRequest;

/// The header by which a client marks a request as safe to replay: the server remembers the
/// key and answers a repeat with the first result instead of acting twice.
fn idempotency_key() -> HeaderName {
    HeaderName::from_static("idempotency-key")
}

/// The standard methods as bits, so the set copies for free into each call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MethodSet(u16);

impl MethodSet {
    /// GET, HEAD, OPTIONS, TRACE, PUT and DELETE: idempotent per RFC 9110, section 9.2.2.
    const IDEMPOTENT: MethodSet = MethodSet(0b11_1111);

    /// The bit of a standard method; `None` for an extension method.
    fn bit(method: &Method) -> Option<u16> {
        // Method names are case-sensitive, so a lower-case "get" is an extension method.
        let index = match method.as_str() {
            "GET" => 0,
            "HEAD" => 1,
            "OPTIONS" => 2,
            "TRACE" => 3,
            "PUT" => 4,
            "DELETE" => 5,
            "POST" => 6,
            "PATCH" => 7,
            "CONNECT" => 8,
            _ => return None,
        };
        Some(1 << index)
    }
}

/// Lets a [`RetryLayer`](crate::retry::RetryLayer) retry only requests that are safe to send
/// twice, and copies them for the retry.
///
/// Retried by default: the idempotent methods of RFC 9110 (GET, HEAD, OPTIONS, TRACE, PUT
/// and DELETE). POST, PATCH and CONNECT are sent once, unless the request carries a
/// non-empty `Idempotency-Key` header: a server that honours the key answers a repeat with
/// the first result instead of acting twice. Only send that header to servers that honour
/// it; [`ignore_idempotency_key`](Self::ignore_idempotency_key) stops trusting it, and
/// [`with_method`](Self::with_method) opts a method in for every request.
///
/// A retry sends a full copy: method, URI, version, headers, extensions and body. So the body
/// must be `Clone`, which a streaming body is not: buffer it first, e.g. as
/// `http_body_util::Full<bytes::Bytes>` (collect a streamed body with
/// `http_body_util::BodyExt::collect`), then clone the cheap, shared bytes for each attempt.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), fusebox_tower::BoxError> {
/// use fusebox_tower::http::{self, IdempotentRequests};
/// use fusebox_tower::retry::RetryLayer;
/// use ::http::{Request, Response, StatusCode};
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use tower::{service_fn, Layer, ServiceExt};
///
/// let calls = Arc::new(AtomicU32::new(0));
/// let counter = calls.clone();
/// let overloaded = service_fn(move |_: Request<String>| {
///     counter.fetch_add(1, Ordering::Relaxed);
///     let mut response = Response::new(String::new());
///     *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
///     async move { Ok::<_, std::io::Error>(response) }
/// });
/// let svc = RetryLayer::new(http::retry_policy().max_retries(2).build()?)
///     .requests(IdempotentRequests::new())
///     .layer(overloaded);
///
/// let post = Request::post("/orders").body("{}".to_string())?;
/// assert_eq!(svc.clone().oneshot(post).await?.status(), 503);
/// assert_eq!(calls.load(Ordering::Relaxed), 1); // sent once: POST is not idempotent
///
/// let keyed = Request::post("/orders").header("idempotency-key", "8e1f").body("{}".to_string())?;
/// assert_eq!(svc.oneshot(keyed).await?.status(), 503);
/// assert_eq!(calls.load(Ordering::Relaxed), 4); // plus three attempts
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct IdempotentRequests {
    methods: MethodSet,
    /// Opted-in extension methods (rare, so usually `None` and free to clone).
    extension_methods: Option<Arc<[Method]>>,
    idempotency_key: Option<HeaderName>,
}

impl IdempotentRequests {
    /// Retries RFC 9110's idempotent methods, and any request with an `Idempotency-Key`.
    ///
    /// ```
    /// use fusebox_tower::http::IdempotentRequests;
    /// use http::Request;
    ///
    /// let policy = IdempotentRequests::new();
    /// assert!(policy.is_retryable(&Request::get("/").body(())?));
    /// assert!(policy.is_retryable(&Request::delete("/item/7").body(())?));
    /// assert!(!policy.is_retryable(&Request::post("/items").body(())?));
    /// # Ok::<(), http::Error>(())
    /// ```
    pub fn new() -> Self {
        IdempotentRequests {
            methods: MethodSet::IDEMPOTENT,
            extension_methods: None,
            idempotency_key: Some(idempotency_key()),
        }
    }

    /// Retries every request with `method`, e.g. POST to an API whose POSTs are idempotent.
    ///
    /// ```
    /// use fusebox_tower::http::IdempotentRequests;
    /// use http::{Method, Request};
    ///
    /// let policy = IdempotentRequests::new().with_method(Method::POST);
    /// assert!(policy.is_retryable(&Request::post("/search").body(())?));
    /// let purge = Method::from_bytes(b"PURGE")?;
    /// let policy = policy.with_method(purge.clone());
    /// assert!(policy.is_retryable(&Request::builder().method(purge).body(())?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_method(mut self, method: Method) -> Self {
        match MethodSet::bit(&method) {
            Some(bit) => self.methods.0 |= bit,
            None => {
                let known = self.extension_methods.as_deref().unwrap_or_default();
                if !known.contains(&method) {
                    let mut methods = known.to_vec();
                    methods.push(method);
                    self.extension_methods = Some(methods.into());
                }
            }
        }
        self
    }

    /// Stops retrying `method` unless a request carries the idempotency key, e.g. DELETE on
    /// an API where a repeated delete reports an error.
    ///
    /// ```
    /// use fusebox_tower::http::IdempotentRequests;
    /// use http::{Method, Request};
    ///
    /// let policy = IdempotentRequests::new().without_method(Method::DELETE);
    /// assert!(!policy.is_retryable(&Request::delete("/item/7").body(())?));
    /// # Ok::<(), http::Error>(())
    /// ```
    #[must_use]
    pub fn without_method(mut self, method: Method) -> Self {
        match MethodSet::bit(&method) {
            Some(bit) => self.methods.0 &= !bit,
            None => {
                if let Some(known) = &self.extension_methods {
                    let rest: Vec<Method> =
                        known.iter().filter(|m| **m != method).cloned().collect();
                    self.extension_methods = (!rest.is_empty()).then(|| rest.into());
                }
            }
        }
        self
    }

    /// Reads the idempotency key from `header` instead of `Idempotency-Key`.
    ///
    /// ```
    /// use fusebox_tower::http::IdempotentRequests;
    /// use http::{HeaderName, Request};
    ///
    /// let policy = IdempotentRequests::new()
    ///     .idempotency_key_header(HeaderName::from_static("x-request-token"));
    /// let post = Request::post("/pay").header("x-request-token", "a1").body(())?;
    /// assert!(policy.is_retryable(&post));
    /// # Ok::<(), http::Error>(())
    /// ```
    #[must_use]
    pub fn idempotency_key_header(mut self, header: HeaderName) -> Self {
        self.idempotency_key = Some(header);
        self
    }

    /// Ignores idempotency keys: only the methods decide, for servers that do not honour keys.
    ///
    /// ```
    /// use fusebox_tower::http::IdempotentRequests;
    /// use http::Request;
    ///
    /// let policy = IdempotentRequests::new().ignore_idempotency_key();
    /// let post = Request::post("/pay").header("idempotency-key", "a1").body(())?;
    /// assert!(!policy.is_retryable(&post));
    /// # Ok::<(), http::Error>(())
    /// ```
    #[must_use]
    pub fn ignore_idempotency_key(mut self) -> Self {
        self.idempotency_key = None;
        self
    }

    /// Whether `request` may be sent again.
    ///
    /// ```
    /// use fusebox_tower::http::IdempotentRequests;
    /// use http::Request;
    ///
    /// let policy = IdempotentRequests::new();
    /// let patch = Request::patch("/user/3").body(())?;
    /// assert!(!policy.is_retryable(&patch));
    /// let keyed = Request::patch("/user/3").header("Idempotency-Key", "k-19").body(())?;
    /// assert!(policy.is_retryable(&keyed));
    /// # Ok::<(), http::Error>(())
    /// ```
    pub fn is_retryable<B>(&self, request: &Request<B>) -> bool {
        let method = request.method();
        let method_allowed = match MethodSet::bit(method) {
            Some(bit) => self.methods.0 & bit != 0,
            None => self
                .extension_methods
                .as_deref()
                .is_some_and(|methods| methods.contains(method)),
        };
        method_allowed
            || self.idempotency_key.as_ref().is_some_and(|header| {
                request
                    .headers()
                    .get(header)
                    .is_some_and(|key| !key.is_empty())
            })
    }
}

impl Default for IdempotentRequests {
    fn default() -> Self {
        IdempotentRequests::new()
    }
}

impl<B: Clone> RetryRequest<Request<B>> for IdempotentRequests {
    /// A full copy of a retryable request (`Request<B: Clone>` clones its head, extensions
    /// included, and its body); `None` for the others.
    fn clone_for_retry(&self, request: &Request<B>) -> Option<Request<B>> {
        self.is_retryable(request).then(|| request.clone())
    }
}
