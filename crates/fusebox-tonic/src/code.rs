//! Where a gRPC response keeps its status.

use http::{HeaderMap, StatusCode};
use tonic::Code;

/// The `grpc-status` of a header or trailer block, if it has one. A value that is not one of
/// the codes reads as `UNKNOWN`, as tonic reads it.
pub(crate) fn header_code(headers: &HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|value| Code::from_bytes(value.as_bytes()))
}

/// The code gRPC assigns to an HTTP error without a gRPC status (a proxy's 503, say).
pub(crate) fn http_status_code(status: StatusCode) -> Code {
    match status {
        StatusCode::BAD_REQUEST => Code::Internal,
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::PermissionDenied,
        StatusCode::NOT_FOUND => Code::Unimplemented,
        StatusCode::TOO_MANY_REQUESTS
        | StatusCode::BAD_GATEWAY
        | StatusCode::SERVICE_UNAVAILABLE
        | StatusCode::GATEWAY_TIMEOUT => Code::Unavailable,
        _ => Code::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn malformed_status_headers_read_as_unknown() {
        let mut headers = HeaderMap::new();
        assert_eq!(header_code(&headers), None);
        for (value, code) in [
            ("14", Code::Unavailable),
            ("5", Code::NotFound),
            ("0", Code::Ok),
            ("17", Code::Unknown),
            ("-1", Code::Unknown),
            ("abc", Code::Unknown),
            ("", Code::Unknown),
            ("99999999999999999999", Code::Unknown),
        ] {
            headers.insert("grpc-status", HeaderValue::from_static(value));
            assert_eq!(header_code(&headers), Some(code), "{value:?}");
        }
    }

    #[test]
    fn http_errors_map_as_grpc_specifies() {
        assert_eq!(
            http_status_code(StatusCode::SERVICE_UNAVAILABLE),
            Code::Unavailable
        );
        assert_eq!(
            http_status_code(StatusCode::TOO_MANY_REQUESTS),
            Code::Unavailable
        );
        assert_eq!(http_status_code(StatusCode::NOT_FOUND), Code::Unimplemented);
        assert_eq!(
            http_status_code(StatusCode::INTERNAL_SERVER_ERROR),
            Code::Unknown
        );
    }
}
