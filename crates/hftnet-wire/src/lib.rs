//! hftnet-wire
