//! The native HTTP API (`/api/v1/...`): Sightline's own ingest and query endpoints.

pub mod admin;
pub mod logs;
pub mod params;
pub mod traces;
