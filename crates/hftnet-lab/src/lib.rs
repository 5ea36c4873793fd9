//! hftnet-lab
