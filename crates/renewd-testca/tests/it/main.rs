//! renewd-testca integration tests: the server over real HTTPS, driven by a raw client, by
//! lego, and as a process.

mod binary;
mod certbot;
mod faults;
mod lego;
mod management;
mod protocol;
mod support;
mod validation;
