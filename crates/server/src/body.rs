//! Reading request bodies: the size limit (413 past `server.max_body_size`, compressed and
//! decompressed alike, so a gzip bomb is refused too), `Content-Encoding: gzip`, tenants.

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use http_body_util::BodyExt;
use sightline_model::Tenant;

use crate::error::ApiError;

/// Reads the whole body, decompressing gzip; refuses bodies over `limit` bytes and empty ones.
///
/// # Errors
/// 413 over the limit, 415 for an unknown content encoding, 400 for bad gzip or no body.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::TooLarge(format!(
            "request body exceeds the limit of {limit} bytes (server.max_body_size)"
        ))
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
    {
        if len > limit as u64 {
            return Err(too_large());
        }
    }
    let raw = http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                too_large()
            } else {
                ApiError::BadRequest(format!("cannot read request body: {e}"))
            }
        })?
        .to_bytes();
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    let bytes = match encoding.as_str() {
        "" | "identity" => raw,
        "gzip" | "x-gzip" => {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&raw[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::BadRequest(format!("invalid gzip body: {e}")))?;
            if out.len() > limit {
                return Err(ApiError::TooLarge(format!(
                    "decompressed request body exceeds the limit of {limit} bytes (server.max_body_size)"
                )));
            }
            Bytes::from(out)
        }
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "unsupported Content-Encoding {other:?} (expected gzip or identity)"
            )))
        }
    };
    if bytes.is_empty() {
        return Err(ApiError::BadRequest("empty request body".into()));
    }
    Ok(bytes)
}

/// The tenant from `X-Scope-OrgID`, `default` when absent.
pub fn tenant(headers: &HeaderMap) -> Result<Tenant, ApiError> {
    match headers.get("x-scope-orgid") {
        None => Ok(Tenant::default_tenant()),
        Some(v) => {
            let s = v.to_str().map_err(|_| {
                ApiError::BadRequest("invalid X-Scope-OrgID header: not ASCII".into())
            })?;
            Tenant::new(s.trim())
                .map_err(|e| ApiError::BadRequest(format!("invalid X-Scope-OrgID header: {e}")))
        }
    }
}

/// The media type of the request without parameters, lowercased; empty when absent.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}
