//! Multipart forms with one file (the 需求征集表 XLSX, a catalogue TOML): read with a limit
//! counted while the bytes arrive, so an oversized upload is refused before it is held in
//! memory. The request body is capped by the route too (`DefaultBodyLimit`).

use std::collections::BTreeMap;

use axum::extract::Multipart;
use axum::http::StatusCode;

use crate::i18n::{Lang, text};

/// The API's own limit for an imported sheet (5 MB).
pub(crate) const IMPORT_BYTES: usize = grantflow_api::programme::MAX_IMPORT_BYTES;
/// A catalogue file is small text.
pub(crate) const CATALOGUE_BYTES: usize = 1024 * 1024;
/// Room for the other fields and the multipart framing.
pub(crate) const FRAMING_BYTES: usize = 64 * 1024;
/// At most this many text fields, each at most this long.
const MAX_FIELDS: usize = 16;
const MAX_FIELD_BYTES: usize = 4096;

pub(crate) struct Upload {
    fields: BTreeMap<String, String>,
    /// (file name, content) of the one file field.
    pub(crate) file: Option<(String, Vec<u8>)>,
}

impl Upload {
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(|s| s.trim())
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum UploadError {
    TooLarge,
    Malformed,
}

impl UploadError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Malformed => StatusCode::BAD_REQUEST,
        }
    }

    pub(crate) fn text(&self, lang: Lang) -> &'static str {
        match self {
            Self::TooLarge => text(lang, "file_too_large"),
            Self::Malformed => text(lang, "upload_malformed"),
        }
    }
}

/// Reads the form: text fields, and the field named `file` up to `limit` bytes.
pub(crate) async fn read(mut multipart: Multipart, limit: usize) -> Result<Upload, UploadError> {
    let mut out = Upload {
        fields: BTreeMap::new(),
        file: None,
    };
    let mut count = 0;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| too_large_or_malformed(&e))?
    {
        count += 1;
        if count > MAX_FIELDS {
            return Err(UploadError::Malformed);
        }
        let name = field.name().unwrap_or_default().to_string();
        let is_file = name == "file";
        let max = if is_file { limit } else { MAX_FIELD_BYTES };
        let file_name = field.file_name().unwrap_or_default().to_string();
        let mut bytes = Vec::new();
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| too_large_or_malformed(&e))?
        {
            if bytes.len() + chunk.len() > max {
                return Err(if is_file {
                    UploadError::TooLarge
                } else {
                    UploadError::Malformed
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        if is_file {
            if !bytes.is_empty() {
                out.file = Some((file_name, bytes));
            }
        } else {
            let value = String::from_utf8(bytes).map_err(|_| UploadError::Malformed)?;
            out.fields.insert(name, value);
        }
    }
    Ok(out)
}

fn too_large_or_malformed(e: &axum::extract::multipart::MultipartError) -> UploadError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        UploadError::TooLarge
    } else {
        UploadError::Malformed
    }
}
