//! Caps on an uploaded workbook, checked before any XLSX reader allocates for it.
//!
//! An XLSX file is a zip of XML parts. A few kilobytes can declare a sheet of 1 048 576 ×
//! 16 384 cells (a reader that builds a dense grid allocates rows × columns), hold a cell
//! reference such as `A99999999999` (which overflows calamine's arithmetic), or inflate to
//! gigabytes (a zip bomb). [`inspect`] therefore reads the zip's central directory and then
//! streams every part once, under a byte budget, through an XML scanner that checks every
//! cell, row, dimension and merged-region reference — all before calamine sees the bytes.
//! Every refusal is an [`ImportFailure`] with a stable code.

use std::io::{Cursor, Read};

use quick_xml::Reader as XmlReader;
use quick_xml::events::{BytesStart, Event};
use zip::ZipArchive;

use crate::cancel::Cancel;
use crate::import::ImportFailure;

/// Excel's own limits: 1 048 576 rows, 16 384 columns (XFD).
pub const EXCEL_MAX_ROW: u32 = 1_048_576;
pub const EXCEL_MAX_COLUMN: u32 = 16_384;

/// The caps of an import. The defaults are generous for the form (a city's 需求征集表 has
/// about a hundred rows and is some tens of kilobytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportLimits {
    /// Parts (entries) in the zip.
    pub max_zip_entries: usize,
    /// Bytes of all parts together once decompressed, declared and actual.
    pub max_decompressed_bytes: u64,
    /// The highest row number a cell may have (1-based), and the number of rows.
    pub max_rows: u32,
    /// Cells (`<c>` elements, empty or not) in one sheet.
    pub max_cells: usize,
    /// Merged regions in one sheet.
    pub max_merged_regions: usize,
    /// Cell errors listed in a report; the total is always counted.
    pub max_errors: usize,
}

impl Default for ImportLimits {
    fn default() -> Self {
        Self {
            max_zip_entries: 256,
            max_decompressed_bytes: 64 * 1024 * 1024,
            max_rows: 10_000,
            max_cells: 200_000,
            max_merged_regions: 10_000,
            max_errors: 1_000,
        }
    }
}

/// What a hostile workbook tried; the payload of [`ImportFailure::LimitExceeded`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitExceeded {
    ZipEntries {
        found: usize,
        max: usize,
    },
    DecompressedBytes {
        max: u64,
    },
    /// A cell beyond the row cap (1-based row).
    Rows {
        row: u64,
        max: u32,
    },
    Cells {
        max: usize,
    },
    MergedRegions {
        max: usize,
    },
}

/// Checks `bytes` against `limits`; see the module documentation.
pub fn inspect(bytes: &[u8], limits: &ImportLimits, cancel: &Cancel) -> Result<(), ImportFailure> {
    let not_a_workbook = |detail: String| ImportFailure::NotAWorkbook { detail };
    let mut zip =
        ZipArchive::new(Cursor::new(bytes)).map_err(|e| not_a_workbook(format!("zip: {e}")))?;
    if zip.len() > limits.max_zip_entries {
        return Err(ImportFailure::LimitExceeded(LimitExceeded::ZipEntries {
            found: zip.len(),
            max: limits.max_zip_entries,
        }));
    }
    let too_large = || {
        ImportFailure::LimitExceeded(LimitExceeded::DecompressedBytes {
            max: limits.max_decompressed_bytes,
        })
    };
    // The declared sizes first: a bomb that says what it is costs nothing to refuse.
    let mut declared: u64 = 0;
    for i in 0..zip.len() {
        let entry = zip
            .by_index_raw(i)
            .map_err(|e| not_a_workbook(format!("zip: {e}")))?;
        declared = declared.saturating_add(entry.size());
    }
    if declared > limits.max_decompressed_bytes {
        return Err(too_large());
    }
    // Then the actual bytes: a declared size may lie.
    let mut budget = limits.max_decompressed_bytes;
    let mut shared = SharedStrings::default();
    for i in 0..zip.len() {
        cancel.check().map_err(|_| ImportFailure::Cancelled)?;
        let entry = zip
            .by_index(i)
            .map_err(|e| not_a_workbook(format!("zip: {e}")))?;
        // The part calamine reads its shared strings from (it looks the name up ignoring case).
        let is_shared_strings = entry.name().eq_ignore_ascii_case("xl/sharedStrings.xml");
        let name = entry.name().to_ascii_lowercase();
        let is_xml = name.ends_with(".xml") || name.ends_with(".rels");
        let mut reader = Budgeted {
            inner: entry,
            left: &mut budget,
            exceeded: false,
        };
        let scanned = scan_part(&mut reader, limits, cancel, is_shared_strings, &mut shared);
        if reader.exceeded {
            return Err(too_large());
        }
        match scanned {
            Ok(()) => {}
            // A broken XML part: calamine might read past where the scanner stopped.
            Err(ScanError::NotXml) if is_xml => {
                return Err(not_a_workbook(format!("{name} is not well-formed XML")));
            }
            // Not XML (an image, a binary part): only the bytes are counted.
            Err(ScanError::NotXml) => {
                std::io::copy(&mut reader, &mut std::io::sink()).ok();
                if reader.exceeded {
                    return Err(too_large());
                }
            }
            Err(ScanError::Refused(f)) => return Err(f),
        }
    }
    // calamine indexes its shared strings without a bounds check (a panic): a cell may
    // only name a string the workbook has.
    if let Some(max) = shared.max_index
        && max >= shared.count
    {
        return Err(not_a_workbook(format!(
            "a cell refers to shared string {max}, the workbook has {}",
            shared.count
        )));
    }
    Ok(())
}

/// Shared strings: how many the workbook has (`<si>` in xl/sharedStrings.xml) and the
/// highest index a `t="s"` cell names.
#[derive(Default)]
struct SharedStrings {
    count: u64,
    max_index: Option<u64>,
    in_shared_cell: bool,
    in_value: bool,
    /// The value's text so far: calamine joins all text inside `<v>`, whatever else is
    /// nested in it, and resolves character references.
    value: String,
}

/// A reader that fails once the shared budget of decompressed bytes is spent.
struct Budgeted<'a, R> {
    inner: R,
    left: &'a mut u64,
    exceeded: bool,
}

impl<R: Read> Read for Budgeted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Ask for at most one byte more than the budget, to see it overflow.
        let room = usize::try_from((*self.left).saturating_add(1)).unwrap_or(usize::MAX);
        let want = buf.len().min(room);
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > *self.left {
            self.exceeded = true;
            *self.left = 0;
            return Err(std::io::Error::other("decompressed size over the cap"));
        }
        *self.left -= n as u64;
        Ok(n)
    }
}

enum ScanError {
    NotXml,
    Refused(ImportFailure),
}

/// Where the scanner is in a sheet, following calamine's rules for cells without `r`:
/// a row without `r` follows the previous one, a cell without `r` the previous cell.
#[derive(Default)]
struct Position {
    row: u64,
    col: u64,
    cells: usize,
    rows: u64,
    merged: usize,
}

fn scan_part<R: Read>(
    reader: &mut Budgeted<'_, R>,
    limits: &ImportLimits,
    cancel: &Cancel,
    is_shared_strings: bool,
    shared: &mut SharedStrings,
) -> Result<(), ScanError> {
    let mut xml = XmlReader::from_reader(std::io::BufReader::new(reader));
    // The configuration calamine reads with, so that both see the same elements.
    let config = xml.config_mut();
    config.check_end_names = false;
    config.trim_text(false);
    config.check_comments = false;
    let mut buf = Vec::with_capacity(1024);
    let mut pos = Position::default();
    let mut events: u32 = 0;
    loop {
        buf.clear();
        events = events.wrapping_add(1);
        if events.is_multiple_of(4096) && cancel.is_cancelled() {
            return Err(ScanError::Refused(ImportFailure::Cancelled));
        }
        match xml.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                match e.local_name().as_ref() {
                    b"si" if is_shared_strings => shared.count += 1,
                    b"c" => shared.in_shared_cell = attribute(&e, b"t")?.as_deref() == Some(b"s"),
                    b"v" if shared.in_shared_cell && !shared.in_value => {
                        shared.in_value = true;
                        shared.value.clear();
                    }
                    _ => {}
                }
                check_element(&e, false, &mut pos, limits)?;
            }
            Ok(Event::Empty(e)) => {
                // calamine expands <v/> to an empty value: index 0.
                if e.local_name().as_ref() == b"v" && shared.in_shared_cell && !shared.in_value {
                    shared.max_index = Some(shared.max_index.unwrap_or(0));
                }
                check_element(&e, true, &mut pos, limits)?;
            }
            Ok(Event::Text(t)) if shared.in_value => {
                shared.value.push_str(&String::from_utf8_lossy(&t));
            }
            Ok(Event::GeneralRef(r)) if shared.in_value => match r.resolve_char_ref() {
                Ok(Some(c)) => shared.value.push(c),
                // A named entity (&lt; …) is not a digit.
                _ => shared.value.push('x'),
            },
            Ok(Event::End(e)) => match e.local_name().as_ref() {
                b"row" => {
                    pos.row += 1;
                    pos.col = 0;
                }
                b"v" if shared.in_value => {
                    shared.in_value = false;
                    // As calamine reads it: the digits, and 0 when they are not a number.
                    let index = shared.value.parse::<u64>().unwrap_or(0);
                    shared.value.clear();
                    shared.max_index = Some(shared.max_index.map_or(index, |m| m.max(index)));
                }
                b"c" => shared.in_shared_cell = false,
                _ => {}
            },
            Ok(Event::Eof) => return Ok(()),
            Ok(_) => {}
            Err(_) => return Err(ScanError::NotXml),
        }
    }
}

fn attribute(e: &BytesStart<'_>, name: &[u8]) -> Result<Option<Vec<u8>>, ScanError> {
    for a in e.attributes() {
        let a = a.map_err(|_| ScanError::NotXml)?;
        if a.key.as_ref() == name {
            return Ok(Some(a.value.into_owned()));
        }
    }
    Ok(None)
}

fn bad_reference(raw: &[u8]) -> ScanError {
    let text: String = String::from_utf8_lossy(raw).chars().take(40).collect();
    ScanError::Refused(ImportFailure::BadCellReference { reference: text })
}

fn check_element(
    e: &BytesStart<'_>,
    empty: bool,
    pos: &mut Position,
    limits: &ImportLimits,
) -> Result<(), ScanError> {
    let refused = |l: LimitExceeded| ScanError::Refused(ImportFailure::LimitExceeded(l));
    let row_cap = |row: u64| {
        if row > u64::from(limits.max_rows) {
            Err(refused(LimitExceeded::Rows {
                row,
                max: limits.max_rows,
            }))
        } else {
            Ok(())
        }
    };
    match e.local_name().as_ref() {
        b"row" => {
            pos.rows += 1;
            row_cap(pos.rows)?;
            if let Some(r) = attribute(e, b"r")? {
                let row = parse_row(&r).ok_or_else(|| bad_reference(&r))?;
                pos.row = u64::from(row) - 1;
            }
            pos.col = 0;
            if empty {
                // <row/> ends at once: the next row follows it.
                pos.row += 1;
            }
        }
        b"c" => {
            pos.cells += 1;
            if pos.cells > limits.max_cells {
                return Err(refused(LimitExceeded::Cells {
                    max: limits.max_cells,
                }));
            }
            if let Some(r) = attribute(e, b"r")? {
                let (row, col) = parse_cell(&r).ok_or_else(|| bad_reference(&r))?;
                pos.row = u64::from(row) - 1;
                pos.col = u64::from(col) - 1;
            }
            if pos.col >= u64::from(EXCEL_MAX_COLUMN) {
                return Err(bad_reference(b"(column beyond XFD)"));
            }
            row_cap(pos.row + 1)?;
            pos.col += 1;
        }
        b"dimension" => {
            if let Some(r) = attribute(e, b"ref")? {
                parse_range(&r).ok_or_else(|| bad_reference(&r))?;
            }
        }
        b"mergeCell" => {
            pos.merged += 1;
            if pos.merged > limits.max_merged_regions {
                return Err(refused(LimitExceeded::MergedRegions {
                    max: limits.max_merged_regions,
                }));
            }
            if let Some(r) = attribute(e, b"ref")? {
                parse_range(&r).ok_or_else(|| bad_reference(&r))?;
            }
        }
        // A shared formula's range, which calamine parses when it reads formulas.
        b"f" => {
            if let Some(r) = attribute(e, b"ref")? {
                parse_range(&r).ok_or_else(|| bad_reference(&r))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A row number `1..=1048576`.
fn parse_row(raw: &[u8]) -> Option<u32> {
    if raw.is_empty() || raw.len() > 7 || !raw.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let row: u32 = std::str::from_utf8(raw).ok()?.parse().ok()?;
    (1..=EXCEL_MAX_ROW).contains(&row).then_some(row)
}

/// A cell reference `A1`..`XFD1048576` as 1-based (row, column); nothing else (no `$`,
/// no lower case beyond what Excel writes, no digits before letters).
pub fn parse_cell(raw: &[u8]) -> Option<(u32, u32)> {
    let letters = raw.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    if letters == 0 || letters > 3 {
        return None;
    }
    let mut col: u32 = 0;
    for b in &raw[..letters] {
        col = col * 26 + u32::from(b.to_ascii_uppercase() - b'A') + 1;
    }
    if col > EXCEL_MAX_COLUMN {
        return None;
    }
    Some((parse_row(&raw[letters..])?, col))
}

/// `A1` or `A1:B2` with the start at or above and left of the end (calamine subtracts).
fn parse_range(raw: &[u8]) -> Option<()> {
    let mut parts = raw.split(|b| *b == b':');
    let start = parse_cell(parts.next()?)?;
    let end = match parts.next() {
        Some(p) => parse_cell(p)?,
        None => start,
    };
    if parts.next().is_some() || end.0 < start.0 || end.1 < start.1 {
        return None;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_excel_s_and_nothing_beyond() {
        assert_eq!(parse_cell(b"A1"), Some((1, 1)));
        assert_eq!(parse_cell(b"XFD1048576"), Some((1_048_576, 16_384)));
        assert_eq!(parse_cell(b"XFE1"), None);
        assert_eq!(parse_cell(b"A1048577"), None);
        assert_eq!(parse_cell(b"A99999999999"), None);
        assert_eq!(parse_cell(b"A0"), None);
        assert_eq!(parse_cell(b"1A"), None);
        assert_eq!(parse_cell(b"$A$1"), None);
        assert_eq!(parse_cell(b"ZZZZ1"), None);
        assert_eq!(parse_range(b"A1:H20"), Some(()));
        assert_eq!(parse_range(b"B2:A1"), None);
        assert_eq!(parse_range(b"A1:B2:C3"), None);
    }
}
