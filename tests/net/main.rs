//! Network tests: the client, auth and pace against tiny servers on 127.0.0.1:0 (real HTTP, loopback only).

mod auth;
mod client;
mod support;
