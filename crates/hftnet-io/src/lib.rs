//! hftnet-io
