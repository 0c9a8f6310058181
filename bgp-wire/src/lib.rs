//! BGP-4 message codec: OPEN, UPDATE, NOTIFICATION, KEEPALIVE, ROUTE-REFRESH with RFC 7606 error handling (no I/O).
