//! Circuit breakers keyed by host, route, tenant or any key extracted from the request.
